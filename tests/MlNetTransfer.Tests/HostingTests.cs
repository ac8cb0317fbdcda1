using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MlNetTransfer.Data;
using MlNetTransfer.Hosting;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// MlNetTransfer.Hosting in process: AddImageClassifier from configuration, the health check, and hot reload (a new
/// model for new requests, the old one for those in flight, then disposed; a replacement that does not load leaves
/// the old one serving).
/// </summary>
public sealed class HostingTests : IClassFixture<HostingTests.TwoModels>
{
    private readonly TwoModels _models;

    public HostingTests(TwoModels models) => _models = models;

    /// <summary>Two small Fashion models with no class in common, so every answer tells which one gave it.</summary>
    public sealed class TwoModels : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public string A { get; }
        public string B { get; }
        public IReadOnlyList<string> ClassesA { get; private set; } = [];
        public IReadOnlyList<string> ClassesB { get; private set; } = [];
        public IReadOnlyList<string> Images { get; }

        public TwoModels()
        {
            A = Train(0, "a.zip");
            B = Train(3, "b.zip");
            ClassesA = Classes(A);
            ClassesB = Classes(B);
            Images = ImageDatasetLoader.Load(TestData.FashionSample).Test.Take(12).Select(i => i.Path).ToList();
        }

        /// <summary>3 classes from the <paramref name="skip"/>th of the Fashion sample.</summary>
        private string Train(int skip, string name)
        {
            var full = ImageDatasetLoader.Load(TestData.FashionSample);
            var chosen = full.Classes.Skip(skip).Take(3).ToHashSet();
            List<LabeledImage> Take(IEnumerable<LabeledImage> images, int n) =>
                images.Where(i => chosen.Contains(i.Label)).GroupBy(i => i.Label).SelectMany(g => g.Take(n)).ToList();
            var data = new ImageDataset(full.Source, full.SplitOrigin, Take(full.Train, 6), [], Take(full.Test, 2), []);
            using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
            {
                Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 },
                Novelty = false,
            }).Train(data);
            var path = Temp.File(name);
            trained.Save(path);
            return path;
        }

        private static IReadOnlyList<string> Classes(string zip)
        {
            using var c = ImageClassifier.Load(zip);
            return c.Classes;
        }

        public void Dispose() => Temp.Dispose();
    }

    /// <summary>A model file to serve and replace, and a host over it.</summary>
    private sealed class Served : IDisposable
    {
        public Served(string firstModel, TestData.TempFolder temp, bool reloadOnChange = true)
        {
            Path = temp.File("served-" + Guid.NewGuid().ToString("N")[..8] + ".zip");
            File.Copy(firstModel, Path);
            var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ImageClassifier:ModelPath"] = Path,
                ["ImageClassifier:MaxEngines"] = "2",
                ["ImageClassifier:ReloadOnChange"] = reloadOnChange ? "true" : "false",
                ["ImageClassifier:ReloadDelay"] = "00:00:00.200",
            }).Build();
            var services = new ServiceCollection();
            services.AddLogging(l => l.AddProvider(Log));
            services.AddImageClassifier(config.GetSection("ImageClassifier"));
            services.AddHealthChecks().AddImageClassifier();
            Provider = services.BuildServiceProvider();
            Classifier = Provider.GetRequiredService<ImageClassifierService>();
        }

        public string Path { get; }
        public ServiceProvider Provider { get; }
        public ImageClassifierService Classifier { get; }
        public ListLogger Log { get; } = new();

        /// <summary>As train writes a model: a temp file beside the target, renamed over it.</summary>
        public void Replace(string model)
        {
            var temp = Path + ".tmp-" + Guid.NewGuid().ToString("N")[..6];
            File.Copy(model, temp);
            File.Move(temp, Path, overwrite: true);
        }

        public async Task<HealthReport> HealthAsync() => await Provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        public void Dispose() => Provider.Dispose();
    }

    [Fact]
    public async Task ServesFromConfigurationWhatTheLibraryPredicts()
    {
        using var served = new Served(_models.A, _models.Temp);
        Assert.Equal(1, served.Classifier.Model.Generation);
        Assert.Equal(_models.ClassesA, served.Classifier.Classes);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(_models.A))), served.Classifier.Model.Sha256);
        using var library = ImageClassifier.Load(_models.A);
        foreach (var image in _models.Images)
        {
            var expected = library.Predict(image).Scores.Select(s => s.Score).ToArray();
            Assert.Equal(expected, (await served.Classifier.PredictAsync(File.ReadAllBytes(image), "x")).Scores.Select(s => s.Score).ToArray());
            Assert.Equal(expected, served.Classifier.Predict(image).Scores.Select(s => s.Score).ToArray());
        }
        var health = await served.HealthAsync();
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Equal(1, health.Entries["image-classifier"].Data["generation"]);
        Assert.Contains(served.Log.Lines, l => l.Contains("Serving " + served.Path));
    }

    [Fact]
    public async Task ReplacingTheFileSwitchesNewRequestsAndDisposesTheOldModelAfterItsLastRequest()
    {
        using var served = new Served(_models.A, _models.Temp);
        Assert.Equal(_models.ClassesA, served.Classifier.Classes);

        // A request in flight on model A: its stream blocks until released, so it holds A's engine.
        using var gate = new BlockingStream(File.ReadAllBytes(_models.Images[0]));
        // Task.Run: the stream is read on the calling thread once an engine is free.
        var inFlight = Task.Run(() => served.Classifier.PredictAsync(gate, "held"));
        Assert.True(gate.Started.Wait(TimeSpan.FromSeconds(30)), "the held request never started reading");

        served.Replace(_models.B);
        await WaitUntil(() => served.Classifier.Model.Generation == 2, "the watcher never loaded the replaced file");
        Assert.Equal(_models.ClassesB, served.Classifier.Classes);
        foreach (var image in _models.Images.Take(4))
            Assert.Contains((await served.Classifier.PredictAsync(File.ReadAllBytes(image))).Label, _models.ClassesB);
        Assert.Equal(1, served.Classifier.RetiredGenerationsInFlight);
        Assert.False(inFlight.IsCompleted);

        gate.Release();
        Assert.Contains((await inFlight).Label, _models.ClassesA);
        Assert.Equal(0, served.Classifier.RetiredGenerationsInFlight);
        Assert.Contains(served.Log.Lines, l => l.Contains("Reloaded: generation 2") && l.Contains("after its 1 requests in flight"));

        // Back to A: a third generation; the same content again is no reload.
        served.Replace(_models.A);
        await WaitUntil(() => served.Classifier.Model.Generation == 3, "the second replacement was never loaded");
        Assert.Equal(_models.ClassesA, served.Classifier.Classes);
        Assert.False(served.Classifier.Reload());
        Assert.Equal(3, served.Classifier.Model.Generation);
        Assert.Equal(0, served.Classifier.RetiredGenerationsInFlight);
    }

    [Fact]
    public async Task AReplacementThatDoesNotLoadLeavesTheOldModelServingAndTheCheckDegraded()
    {
        using var served = new Served(_models.A, _models.Temp, reloadOnChange: false);
        _ = served.Classifier.Model;
        File.WriteAllText(served.Path, "not a model");
        var refused = Assert.Throws<ModelLoadException>(() => served.Classifier.Reload());
        Assert.Contains(served.Path, refused.Message);
        Assert.Equal(1, served.Classifier.Model.Generation);
        Assert.Contains((await served.Classifier.PredictAsync(File.ReadAllBytes(_models.Images[0]))).Label, _models.ClassesA);
        var health = await served.HealthAsync();
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Contains("did not load", health.Entries["image-classifier"].Description);
        Assert.Contains(served.Log.Lines, l => l.Contains("did not load") && l.Contains("generation 1 still serves"));

        served.Replace(_models.B);
        Assert.True(served.Classifier.Reload());
        Assert.Equal(_models.ClassesB, served.Classifier.Classes);
        Assert.Equal(HealthStatus.Healthy, (await served.HealthAsync()).Status);
    }

    [Fact]
    public async Task ManyRequestsDuringTwoReplacementsAllSucceedAndEachClientSwitchesForward()
    {
        using var served = new Served(_models.A, _models.Temp);
        var images = _models.Images.Select(File.ReadAllBytes).ToList();
        var failures = new ConcurrentBag<string>();
        var phases = new ConcurrentBag<string>();
        var phaseOf = new int[6];
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 6).Select(c => Task.Run(async () =>
        {
            int phase = 0, i = c;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var label = (await served.Classifier.PredictAsync(images[i++ % images.Count])).Label;
                    // Phases: A (0), B (1), A again (2); a client never goes back.
                    int seen = _models.ClassesB.Contains(label) ? 1 : phase >= 1 ? 2 : 0;
                    if (seen < phase)
                        failures.Add($"client {c}: {label} after phase {phase}");
                    phase = Math.Max(phase, seen);
                    Volatile.Write(ref phaseOf[c], phase);
                }
                catch (Exception e)
                {
                    failures.Add($"client {c}: {e.GetType().Name}: {e.Message}");
                }
            }
            phases.Add($"{c}:{phase}");
        })).ToList();

        await Task.Delay(1000);
        served.Replace(_models.B);
        await WaitUntil(() => served.Classifier.Model.Generation == 2, "the first replacement was never loaded:\n" + string.Join("\n", served.Log.Lines));
        // Every client answered by B before A comes back: the first requests on a new model wait for its engines.
        await WaitUntil(() => Enumerable.Range(0, phaseOf.Length).All(i => Volatile.Read(ref phaseOf[i]) >= 1) || !failures.IsEmpty, "a client never got an answer from B");
        served.Replace(_models.A);
        await WaitUntil(() => served.Classifier.Model.Generation == 3, "the second replacement was never loaded");
        await WaitUntil(() => Enumerable.Range(0, phaseOf.Length).All(i => Volatile.Read(ref phaseOf[i]) >= 2) || !failures.IsEmpty, "a client never got an answer from A again");
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.Empty(failures);
        Assert.All(phases, p => Assert.EndsWith(":2", p));
        await WaitUntil(() => served.Classifier.RetiredGenerationsInFlight == 0, "an old generation was never disposed");
    }

    [Fact]
    public void AMissingModelPathStopsTheHostAtStartSayingSo()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddImageClassifier(_ => { });
        using var host = builder.Build();
        var e = Assert.Throws<OptionsValidationException>(() => host.Start());
        Assert.Contains("ModelPath is not set", e.Message);
    }

    [Fact]
    public void AFileThatIsNotAModelStopsTheHostAtStartNamingIt()
    {
        var bad = _models.Temp.File("not-a-model.zip");
        File.WriteAllText(bad, "text");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddImageClassifier(o => o.ModelPath = bad);
        using var host = builder.Build();
        var e = Assert.Throws<ModelLoadException>(() => host.Start());
        Assert.Contains(bad, e.Message);
    }

    private static async Task WaitUntil(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(50);
        }
    }

    /// <summary>Image bytes whose first read blocks until released: a request held in flight.</summary>
    private sealed class BlockingStream(byte[] bytes) : MemoryStream(bytes)
    {
        private readonly ManualResetEventSlim _release = new();

        public ManualResetEventSlim Started { get; } = new();

        public void Release() => _release.Set();

        public override int Read(byte[] buffer, int offset, int count)
        {
            Started.Set();
            _release.Wait(TimeSpan.FromSeconds(60));
            return base.Read(buffer, offset, count);
        }

        public override int Read(Span<byte> buffer)
        {
            Started.Set();
            _release.Wait(TimeSpan.FromSeconds(60));
            return base.Read(buffer);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _release.Dispose();
                Started.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>Every log line, formatted.</summary>
    private sealed class ListLogger : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => _lines.ToList();

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }
}

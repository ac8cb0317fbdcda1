using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// The web sample under load while its model file is replaced twice (A, then B, then A again, each written as train
/// writes: a temp file renamed over it): no request fails, every client's answers move from A's classes to B's and
/// back and never return, the old models are disposed (no temp file is left) and the server's resident memory comes back
/// to its level (ImageClassifierOptions.ReturnMemoryAfterReload). 8 clients for
/// HOT_RELOAD_SECONDS (default 12; benchmarks/figures/hot-reload.sh runs 30) of real-photo uploads.
/// </summary>
public sealed class HotReloadLoadTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [SkippableFact]
    public async Task EightClientsWhileTheModelIsReplacedTwiceGetNoFailureAndSwitchModels()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("HOT_RELOAD_SECONDS"), out var s) && s >= 6 ? s : 12;
        using var models = new HostingTests.TwoModels();
        var (a, b, classesB) = (models.A, models.B, models.ClassesB);
        var served = models.Temp.File("model.zip");
        File.Copy(a, served);
        var photos = Directory.EnumerateFiles(Path.Combine(TestData.Hymenoptera, "val"), "*.jpg", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Take(40).Select(File.ReadAllBytes).ToList();

        // HOT_RELOAD_RETURN_MEMORY=false serves with ImageClassifierOptions.ReturnMemoryAfterReload off, for the comparison.
        var returnMemory = Environment.GetEnvironmentVariable("HOT_RELOAD_RETURN_MEMORY") != "false";
        using var server = WebSampleProcess.Start(served, arguments: returnMemory ? [] : ["--ImageClassifier:ReturnMemoryAfterReload=false"]);
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var failures = new ConcurrentBag<string>();
        var latencies = new ConcurrentBag<double>();
        var firstOfPhase = new double[3];
        Array.Fill(firstOfPhase, double.NaN);
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        int requests = 0;
        var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            int phase = 0, i = c * 5;
            while (!stop.IsCancellationRequested)
            {
                var started = clock.Elapsed.TotalSeconds;
                try
                {
                    using var form = new MultipartFormDataContent();
                    var image = new ByteArrayContent(photos[i++ % photos.Count]);
                    image.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
                    form.Add(image, "image", "photo.jpg");
                    using var response = await http.PostAsync("api/predict", form);
                    var body = await response.Content.ReadAsStringAsync();
                    Interlocked.Increment(ref requests);
                    latencies.Add(clock.Elapsed.TotalSeconds - started);
                    if (!response.IsSuccessStatusCode)
                    {
                        failures.Add($"client {c}: {(int)response.StatusCode} {body}");
                        continue;
                    }
                    var label = JsonDocument.Parse(body).RootElement.GetProperty("label").GetString()!;
                    int seen = classesB.Contains(label) ? 1 : phase >= 1 ? 2 : 0;
                    if (seen < phase)
                        failures.Add($"client {c}: {label} (model {(seen == 0 ? "A" : "B")}) after it saw phase {phase}");
                    if (seen > phase)
                        lock (firstOfPhase)
                            if (double.IsNaN(firstOfPhase[seen]) || clock.Elapsed.TotalSeconds < firstOfPhase[seen])
                                firstOfPhase[seen] = clock.Elapsed.TotalSeconds;
                    phase = Math.Max(phase, seen);
                }
                catch (Exception e)
                {
                    failures.Add($"client {c}: {e.GetType().Name}: {e.Message}");
                }
            }
        })).ToList();

        async Task UntilAnswered(int phase)
        {
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(90);
            while (clock.Elapsed < deadline && !failures.Any())
            {
                lock (firstOfPhase)
                    if (!double.IsNaN(firstOfPhase[phase]))
                        return;
                await Task.Delay(50);
            }
        }

        // The server's resident memory and temp files while model A serves, under load.
        await Task.Delay(TimeSpan.FromSeconds(seconds / 3.0 - 1));
        long rssBefore = server.ResidentBytes;
        var tempBefore = TempFiles(server);
        var replaced = new double[2];
        replaced[0] = clock.Elapsed.TotalSeconds;
        Replace(b, served);
        // Each model serves a third of the run from its first answer on: loading one under load takes seconds.
        await UntilAnswered(1);
        await Task.Delay(TimeSpan.FromSeconds(seconds / 3.0));
        replaced[1] = clock.Elapsed.TotalSeconds;
        Replace(a, served);
        await UntilAnswered(2);
        await Task.Delay(TimeSpan.FromSeconds(seconds / 3.0));
        long rssAfter = server.ResidentBytes;
        var tempAfter = TempFiles(server);
        stop.Cancel();
        await Task.WhenAll(clients);
        using var info = JsonDocument.Parse(await http.GetStringAsync("api/info"));
        var health = await http.GetStringAsync("health");

        var sorted = latencies.Order().ToList();
        output.WriteLine($"{requests} requests in {clock.Elapsed.TotalSeconds:0.0} s from 8 clients ({requests / clock.Elapsed.TotalSeconds:0.0}/s), {failures.Count} failed; " +
            $"latency median {sorted[sorted.Count / 2] * 1000:0} ms, 99th percentile {sorted[(int)(sorted.Count * 0.99)] * 1000:0} ms");
        output.WriteLine($"replaced at {replaced[0]:0.0} s and {replaced[1]:0.0} s; first answer of the new model {firstOfPhase[1] - replaced[0]:0.00} s and {firstOfPhase[2] - replaced[1]:0.00} s later");
        output.WriteLine($"served generation {info.RootElement.GetProperty("generation").GetInt32()}, health {health}");
        output.WriteLine($"server RSS under load (ReturnMemoryAfterReload {returnMemory}): {rssBefore / 1048576.0:0} MiB on model A before, {rssAfter / 1048576.0:0} MiB on A again after two reloads ({(rssAfter - rssBefore) / 1048576.0:+0;-0} MiB)");
        output.WriteLine($"server temp files: {tempBefore.Count} before ({string.Join(", ", tempBefore)}), {tempAfter.Count} after ({string.Join(", ", tempAfter)})");

        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(20)) + "\n" + server.Output);
        Assert.False(double.IsNaN(firstOfPhase[1]), "no answer ever came from model B");
        Assert.False(double.IsNaN(firstOfPhase[2]), "no answer came from model A after the second replacement");
        Assert.Equal(3, info.RootElement.GetProperty("generation").GetInt32());
        Assert.Equal("Healthy", health);
        Assert.Equal(tempBefore.Count, tempAfter.Count);
        // Back to its level: without ReturnMemoryAfterReload it stays about 500 MiB higher after two reloads (measured,
        // samples/WebClassifier/README.md); under steady load without reloads it moves by a few tens of MiB.
        if (returnMemory)
            Assert.True(rssAfter - rssBefore < 128L << 20,
                $"the server's RSS grew from {rssBefore >> 20} MiB to {rssAfter >> 20} MiB over two reloads");
        Assert.Equal(0, server.Stop(TimeSpan.FromSeconds(30)));
        // ONNX Runtime's telemetry client may keep its empty session marker (.ses) there: not a file of ours.
        Assert.DoesNotContain(TempFiles(server), f => !f.StartsWith(".ses ", StringComparison.Ordinal));
    }

    /// <summary>As train writes a model: a temp file beside it, renamed over it.</summary>
    private static void Replace(string model, string served)
    {
        var temp = served + ".tmp";
        File.Copy(model, temp, overwrite: true);
        File.Move(temp, served, overwrite: true);
    }

    /// <summary>The files in the server's temp folder (its working folder too), by name and size.</summary>
    private static List<string> TempFiles(WebSampleProcess server) =>
        Directory.EnumerateFiles(server.TempFolder.Path, "*", SearchOption.AllDirectories)
            .Select(f => $"{Path.GetFileName(f)} {new FileInfo(f).Length / 1048576.0:0} MiB").Order().ToList();
}

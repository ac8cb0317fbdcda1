using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.Data;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using SkiaSharp;
using Xunit.Abstractions;

namespace MlNetTransfer.Tests;

/// <summary>
/// Images in memory, on real photos: the library's <c>Predict(byte[])</c>, <c>Predict(Stream)</c> and
/// <c>Predict(MLImage)</c> give exactly <c>Predict(path)</c>'s answer, and a stock ML.NET app handing an MLImage to the
/// zip's steps after its image loader gives exactly what it gets from the file. A phone photo stored sideways (EXIF
/// orientation 6) shows the orientation story: the library turns it upright; stock ML.NET, from the file or from memory,
/// sees the stored pixels; given upright, it answers as the library does.
/// </summary>
public sealed class InMemoryInputTests : IClassFixture<InMemoryInputTests.PhotoModel>
{
    private const double Tolerance = 1e-5;

    private readonly PhotoModel _model;
    private readonly ITestOutputHelper _output;

    public InMemoryInputTests(PhotoModel model, ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    /// <summary>A feature-extraction model on a few hymenoptera photos, the photos to predict, and a sideways one made of a real photo.</summary>
    public sealed class PhotoModel : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public string Zip => Temp.File("model.zip");
        public IReadOnlyList<string> Photos { get; } = [];

        /// <summary>A real photo with an EXIF orientation of 6 (stored turned 90 degrees left; upright is 90 degrees clockwise).</summary>
        public string Sideways => Temp.File("sideways.jpg");

        /// <summary>The sideways photo's stored pixels turned upright by hand, saved losslessly without EXIF.</summary>
        public string Upright => Temp.File("upright.png");

        public PhotoModel()
        {
            if (!Directory.Exists(TestData.Hymenoptera))
                return;
            var full = ImageDatasetLoader.Load(TestData.Hymenoptera);
            static List<LabeledImage> Take(IEnumerable<LabeledImage> images, int n) =>
                images.GroupBy(i => i.Label).SelectMany(g => g.OrderBy(i => i.Path, StringComparer.Ordinal).Take(n)).ToList();
            var test = Take(full.Validation, 3);
            var dataset = new ImageDataset(full.Source, full.SplitOrigin, Take(full.Train, 10), [], test, []);
            using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
                   {
                       Mode = TrainingMode.FeatureExtraction,
                       Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 },
                   }).Train(dataset))
                trained.Save(Zip);
            var photos = test.Select(i => i.Path).ToList();
            if (Directory.Exists(TestData.Caltech))
                photos.AddRange(Directory.EnumerateFiles(TestData.Caltech, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(2));
            Photos = photos;

            File.WriteAllBytes(Sideways, BadImages.WithExifOrientation(File.ReadAllBytes(photos[0]), 6));
            using var stored = SKBitmap.Decode(Sideways);
            using var turned = new SKBitmap(stored.Height, stored.Width, stored.ColorType, stored.AlphaType);
            for (int y = 0; y < stored.Height; y++)
                for (int x = 0; x < stored.Width; x++)
                    turned.SetPixel(stored.Height - 1 - y, x, stored.GetPixel(x, y));
            using var png = turned.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Upright, png.ToArray());
        }

        public void Dispose() => Temp.Dispose();
    }

    [SkippableFact]
    public void BytesStreamAndMLImageGiveWhatThePathGives()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        var watch = Stopwatch.StartNew();
        // The sideways photo really carries the orientation (the inserted EXIF segment comes before the photo's own).
        Assert.Equal(SKEncodedOrigin.RightTop, ImageDecoder.Decode(File.ReadAllBytes(_model.Sideways), new ImageValidationOptions()).Header!.Origin);
        using var classifier = ImageClassifier.Load(_model.Zip);
        Assert.True(classifier.PredictsInMemory);
        double worst = 0, worstNovelty = 0;
        foreach (var photo in _model.Photos.Append(_model.Sideways))
        {
            var byPath = classifier.Predict(photo);
            var bytes = File.ReadAllBytes(photo);
            var name = Path.GetFileName(photo);
            var byBytes = classifier.Predict(bytes, name);
            ImagePrediction byStream, byPipe;
            using (var stream = File.OpenRead(photo))
                byStream = classifier.Predict(stream, name);
            // A stream that cannot seek (a network body): read in chunks, its length unknown until it ends.
            using (var pipe = new UnseekableStream(new MemoryStream(bytes)))
                byPipe = classifier.Predict(pipe, name);
            // The app's own MLImage is taken as is: for the sideways photo the app gives it upright.
            using var decoded = MLImage.CreateFromFile(photo == _model.Sideways ? _model.Upright : photo);
            var byImage = classifier.Predict(decoded, name);

            Assert.Equal(name, byBytes.Path);
            foreach (var other in new[] { byBytes, byStream, byPipe, byImage })
            {
                Assert.Equal(byPath.Label, other.Label);
                worst = Math.Max(worst, MaxAbsDifference(byPath, other));
                Assert.NotNull(other.Novelty);
                worstNovelty = Math.Max(worstNovelty, Math.Abs(byPath.Novelty!.Value - other.Novelty!.Value));
                Assert.Equal(byPath.IsUnknown, other.IsUnknown);
            }
        }
        _output.WriteLine($"{_model.Photos.Count} real photos + 1 sideways: max abs probability difference {worst:G3}, novelty {worstNovelty:G3} ({watch.Elapsed.TotalSeconds:F1} s)");
        Assert.True(worst <= Tolerance, $"max abs probability difference {worst}");
        Assert.True(worstNovelty <= Tolerance, $"max abs novelty difference {worstNovelty}");
        Assert.Equal(ImageClassifier.UnnamedImage, classifier.Predict(File.ReadAllBytes(_model.Photos[0])).Path);
    }

    [SkippableFact]
    public void PoolPredictsInMemoryAsTheClassifierDoes()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        using var classifier = ImageClassifier.Load(_model.Zip);
        using var pool = new ImageClassifierPool(_model.Zip, maxSize: 2);
        var photo = _model.Photos[^1];
        var expected = classifier.Predict(photo);
        var bytes = File.ReadAllBytes(photo);
        using var image = MLImage.CreateFromFile(photo);
        using var stream = new MemoryStream(bytes);
        var answers = new[]
        {
            pool.Predict(bytes, "a.jpg"),
            pool.PredictAsync(bytes, "a.jpg").GetAwaiter().GetResult(),
            pool.Predict(stream, "a.jpg"),
            pool.Predict(image, "a.jpg"),
            pool.PredictAsync(image, "a.jpg").GetAwaiter().GetResult(),
        };
        foreach (var answer in answers)
        {
            Assert.Equal("a.jpg", answer.Path);
            Assert.True(MaxAbsDifference(expected, answer) <= Tolerance);
        }
    }

    [SkippableFact]
    public void StockConsumerInMemoryGivesWhatItsFileGivesAndTheSidewaysStoryHolds()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        var watch = Stopwatch.StartNew();
        string[] images = [.. _model.Photos, _model.Sideways, _model.Upright];
        var fromFiles = Consumer(images);
        var fromMemory = Consumer(["--in-memory", .. images]);
        using var classifier = ImageClassifier.Load(_model.Zip);

        double worstFileVsMemory = 0, worstVsLibrary = 0;
        foreach (var image in images)
        {
            // Stock ML.NET: the file through the zip's loader, and the bytes through MLImage.CreateFromStream, are the same pixels.
            worstFileVsMemory = Math.Max(worstFileVsMemory, MaxAbsDifference(fromFiles[image], fromMemory[image]));
            Assert.Equal(fromFiles[image].Novelty!.Value, fromMemory[image].Novelty!.Value, Tolerance);
            Assert.Equal(fromFiles[image].Label, fromMemory[image].Label);
        }
        foreach (var photo in _model.Photos)
        {
            // Photos stored upright: stock ML.NET gives the library's answer, from the file or from memory.
            var library = classifier.Predict(photo);
            worstVsLibrary = Math.Max(worstVsLibrary, MaxAbsDifference(library, fromMemory[photo]));
            Assert.Equal(library.Novelty!.Value, fromMemory[photo].Novelty!.Value, Tolerance);
        }

        // The sideways photo: stock ML.NET ignores EXIF (dotnet/machinelearning #6592), from the file and from memory
        // alike, so it predicts the stored pixels, as the library predicts an MLImage of them taken as is...
        using var storedPixels = MLImage.CreateFromFile(_model.Sideways);
        var stored = classifier.Predict(storedPixels);
        Assert.True(MaxAbsDifference(stored, fromMemory[_model.Sideways]) <= Tolerance);
        Assert.Equal(stored.Novelty!.Value, fromMemory[_model.Sideways].Novelty!.Value, Tolerance);
        // ...while the library turns the file upright; stock ML.NET given the upright image answers as the library does.
        var upright = classifier.Predict(_model.Sideways);
        Assert.True(MaxAbsDifference(upright, fromMemory[_model.Upright]) <= Tolerance);
        Assert.Equal(upright.Novelty!.Value, fromMemory[_model.Upright].Novelty!.Value, Tolerance);
        var sidewaysCost = MaxAbsDifference(upright, fromMemory[_model.Sideways]);

        _output.WriteLine($"stock consumer, {images.Length} images: file vs in-memory max abs probability difference {worstFileVsMemory:G3}; " +
                          $"vs the library on {_model.Photos.Count} upright photos {worstVsLibrary:G3}; the sideways photo seen sideways differs from upright by {sidewaysCost:G3} ({watch.Elapsed.TotalSeconds:F1} s)");
        Assert.True(worstFileVsMemory <= Tolerance, $"file vs in-memory {worstFileVsMemory}");
        Assert.True(worstVsLibrary <= Tolerance, $"stock vs library {worstVsLibrary}");
    }

    [SkippableFact]
    public void ConsumptionSampleCompilesAgainstStockPackagesAndPredictsInMemoryAsFromTheFile()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        var watch = Stopwatch.StartNew();
        using var project = new TestData.TempFolder();
        // A customer's folder: the model, the sample written beside it, a program using it; stock packages only.
        File.Copy(_model.Zip, project.File("model.zip"));
        using (var classifier = ImageClassifier.Load(_model.Zip))
            Reporting.ConsumptionSample.Write(project.File("model.zip"), classifier.Classes, classifier.UnknownThreshold);
        var stockProject = File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "StockConsumer", "StockConsumer.csproj"));
        var packages = string.Join("\n", stockProject.Split('\n').Where(l => l.Contains("<PackageReference", StringComparison.Ordinal)));
        File.WriteAllText(project.File("App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <NoWarn>NU1603</NoWarn>
              </PropertyGroup>
              <ItemGroup>
            {packages}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(project.File("Program.cs"), """
            using Microsoft.ML.Data;
            // For each image: the largest difference between the file's probabilities and those from its bytes, its
            // MLImage, and the pool's three ways.
            using var pool = new ModelPool();
            foreach (var path in args)
            {
                var file = Model.Predict(path).Score;
                using var image = MLImage.CreateFromFile(path);
                var others = new[] { Model.Predict(File.ReadAllBytes(path)).Score, Model.Predict(image).Score, pool.Predict(path).Score, pool.Predict(File.ReadAllBytes(path)).Score, pool.Predict(image).Score };
                Console.WriteLine(others.Max(o => o.Zip(file, (a, b) => Math.Abs(a - b)).Max()).ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            }
            """);
        var build = RunIn(project.Path, "build", "-c", "Release", "-nologo", "-v", "q", "-o", project.File("bin"));
        Assert.True(build.ExitCode == 0, build.StdOut + build.StdErr);
        var run = RunIn(project.Path, [project.File(Path.Combine("bin", "App.dll")), .. _model.Photos]);
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        var differences = run.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => double.Parse(l, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(_model.Photos.Count, differences.Count);
        _output.WriteLine($"consumption sample, built against stock packages: max abs probability difference from the file {differences.Max():G3} ({watch.Elapsed.TotalSeconds:F1} s)");
        Assert.True(differences.Max() <= Tolerance);
    }

    /// <summary>The stock consumer's answers by image path (the model on the command line first).</summary>
    private Dictionary<string, ImagePrediction> Consumer(string[] arguments)
    {
        var inMemory = arguments[0] == "--in-memory";
        var run = Processes.Run(Processes.StockConsumerDll, inMemory ? ["--in-memory", _model.Zip, .. arguments[1..]] : [_model.Zip, .. arguments]);
        Assert.True(run.ExitCode == 0, run.StdErr);
        return run.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(
            e => e.GetProperty("path").GetString()!,
            e =>
            {
                var scores = e.GetProperty("scores").EnumerateObject().Select(p => new LabelScore(p.Name, p.Value.GetSingle())).OrderByDescending(s => s.Score).ToList();
                return new ImagePrediction(e.GetProperty("path").GetString()!, e.GetProperty("label").GetString()!, scores[0].Score, scores) { Novelty = e.GetProperty("novelty").GetSingle() };
            });
    }

    private static double MaxAbsDifference(ImagePrediction a, ImagePrediction b)
    {
        Assert.Equal(a.Scores.Select(s => s.Label).Order(), b.Scores.Select(s => s.Label).Order());
        var byLabel = b.Scores.ToDictionary(s => s.Label, s => s.Score);
        return a.Scores.Max(s => Math.Abs(s.Score - byLabel[s.Label]));
    }

    private static Processes.Result RunIn(string folder, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = folder };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        return Processes.Run(info, TimeSpan.FromMinutes(5));
    }

    /// <summary>A stream that hides its length and cannot seek, as a request body.</summary>
    internal sealed class UnseekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        // At most 1000 bytes a read, as a network delivers them.
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Training;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// Featurization side by side in one process (issue 5's table): (a) our featurizer vs ML.NET's DnnFeaturizeImage chain,
/// (b) vs raw ONNX Runtime on already-decoded tensors, (c) the int8 conv base vs raw fp32, (d) single-image latency of a
/// saved zip in a PredictionEngine vs one raw ORT run, (e) peak RSS featurizing N vs 4N images (child processes),
/// (f) a second train with a warm feature cache vs a cold one. Rounds alternate the ways; round 0 warms up.
/// </summary>
public static class FeaturizeBenchmark
{
    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    public static int Run(string data, int repeats, int threads, bool int8, string? caltech)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var images = dataset.All.ToList();
        var preset = ConvBaseRegistry.Get("resnet18");
        var graph = FeaturizerGraphCache.GetOrBuild(preset);
        var spec = graph.Preset.Preprocessing;
        var ml = new MLContext(1);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {FineTuneEpochBenchmark.RuntimeInfo()}; ONNX Runtime {OrtEnv.Instance().GetVersionString()}, {threads} intra-op threads");
        Console.WriteLine($"data: {images.Count} images (all splits) of {data}; base resnet18, {new FeaturizerOptions().BatchSize} views per ORT call (ours), 16 (raw ORT), cache off for (a)-(c)");
        Console.WriteLine();

        string? int8Graph = null;
        if (int8)
        {
            var clock = Stopwatch.StartNew();
            int8Graph = Int8ConvBase.GetOrBuild(graph, dataset.Train, seed: 1).Path;
            Console.WriteLine(FormattableString.Invariant($"int8 conv base (calibrated on 200 of the training images, seed 1; {clock.Elapsed.TotalSeconds:F1} s, or cached): {int8Graph}"));
        }

        // (f) first: it also leaves the zip that (d) loads.
        var temp = Directory.CreateTempSubdirectory("mlnt-bench-");
        try
        {
            var zip = Path.Combine(temp.FullName, "model.zip");
            var (cold, warm, hits) = TrainColdThenWarm(data, temp.FullName, zip, threads);
            Console.WriteLine(FormattableString.Invariant($"(f) train (feature extraction, lbfgs head, {images.Count} images + mirrors): cold cache {cold:F1} s, warm cache {warm:F1} s ({hits} images from the cache)"));

            // Decoded, resized pixels for the raw-ORT ways, made once and not timed.
            var pixels = MakePixels(ml, spec, images);
            var ways = new List<(string Name, Func<int> Run)>
            {
                ("(a) ML.NET DnnFeaturizeImage(ResNet18) chain", () => StockChain(ml, images)),
                ("ours: the featurization pipeline (files -> features)", () => Pipelines.Features(ml, graph, images, threads)),
                ("(b) raw ORT fp32 on decoded tensors", () => RawOrt(graph.Path, pixels, spec, threads)),
            };
            if (int8Graph is not null)
                ways.Add(("(c) raw ORT int8 on decoded tensors", () => RawOrt(int8Graph, pixels, spec, threads)));
            var seconds = ways.ToDictionary(w => w.Name, _ => new List<double>());
            for (int round = 0; round <= repeats; round++)
            {
                foreach (var (name, run) in ways)
                {
                    var clock = Stopwatch.StartNew();
                    int n = run();
                    if (n != images.Count)
                        throw new InvalidOperationException($"{name} featurized {n} of {images.Count}");
                    if (round > 0)
                        seconds[name].Add(clock.Elapsed.TotalSeconds);
                    Console.WriteLine(FormattableString.Invariant($"  round {round}{(round == 0 ? " (warm-up)" : "")}: {name}: {clock.Elapsed.TotalSeconds:F2} s"));
                }
            }
            Console.WriteLine();
            DecodeCost(ml, spec, images);
            Console.WriteLine();
            var rate = seconds.ToDictionary(s => s.Key, s => images.Count / Median(s.Value));
            Console.WriteLine("| way | median of rounds | images/s |");
            Console.WriteLine("|---|---:|---:|");
            foreach (var (name, _) in ways)
                Console.WriteLine(FormattableString.Invariant($"| {name} | {Median(seconds[name]):F2} s | {rate[name]:F1} |"));
            Console.WriteLine();
            double ours = rate[ways[1].Name];
            Console.WriteLine(FormattableString.Invariant($"(a) ours / ML.NET chain: {ours / rate[ways[0].Name]:F2}x   (goal >= 1.25x)"));
            Console.WriteLine(FormattableString.Invariant($"(b) ours / raw ORT fp32: {ours / rate[ways[2].Name]:F2}x   (goal >= 0.9x)"));
            if (int8Graph is not null)
                Console.WriteLine(FormattableString.Invariant($"(c) raw ORT int8 / raw ORT fp32: {rate[ways[3].Name] / rate[ways[2].Name]:F2}x   (goal >= 2x)"));

            var (zipMs, rawMs) = Latency(ml, zip, graph.Path, pixels, images, spec, threads, repeats);
            Console.WriteLine(FormattableString.Invariant($"(d) single image: saved zip in a PredictionEngine {zipMs:F1} ms (path in, label out) vs one raw ORT run {rawMs:F1} ms (decoded tensor in, features out; ORT defaults, {threads} threads): {zipMs / rawMs:F2}x   (goal <= 1.3x)"));

            var (rssN, rssN4) = (ChildPeakRss(data, 1, threads), ChildPeakRss(data, 4, threads));
            Console.WriteLine(FormattableString.Invariant($"(e) peak RSS featurizing {images.Count} images {rssN / 1048576.0:F0} MiB, {4 * images.Count} images {rssN4 / 1048576.0:F0} MiB: {rssN4 / (double)rssN:F2}x   (goal <= 1.2x)"));
            Console.WriteLine(FormattableString.Invariant($"(f) warm / cold train: {warm / cold:F2} ({cold / warm:F1}x faster)"));
            if (int8)
            {
                Console.WriteLine();
                Console.WriteLine("(c) accuracy, feature extraction + linear head, fp32 vs int8 conv base (same seed, same options):");
                foreach (var set in new[] { data, caltech }.OfType<string>().Where(Directory.Exists))
                {
                    var fp32 = Errors(set, ConvBasePrecision.Fp32, temp.FullName, threads);
                    var q8 = Errors(set, ConvBasePrecision.Int8, temp.FullName, threads);
                    Console.WriteLine(FormattableString.Invariant(
                        $"  {Path.GetFileName(Path.GetFullPath(set))} {fp32.Split} ({fp32.Count} images): fp32 {fp32.Errors} errors (accuracy {fp32.Accuracy:F4}), int8 {q8.Errors} errors (accuracy {q8.Accuracy:F4}): {q8.Errors - fp32.Errors:+0;-0;0} (goal <= +1)"));
                }
            }
        }
        finally
        {
            temp.Delete(recursive: true);
        }
        return 0;
    }

    /// <summary>Child process of (e): featurizes the set <paramref name="copies"/> times over (cache off), prints its peak RSS.</summary>
    public static int PeakRssChild(string data, int copies, int threads)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var once = dataset.All.ToList();
        var images = Enumerable.Range(0, copies).SelectMany(_ => once).ToList();
        var ml = new MLContext(1);
        int n = Pipelines.Features(ml, FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18")), images, threads);
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        Console.WriteLine(FormattableString.Invariant($"featurized={n} peak_rss_bytes={self.PeakWorkingSet64}"));
        return 0;
    }

    private static long ChildPeakRss(string data, int copies, int threads)
    {
        var dll = typeof(FeaturizeBenchmark).Assembly.Location;
        var host = Environment.ProcessPath!;
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, UseShellExecute = false };
        if (!Path.GetFileNameWithoutExtension(host).Equals(Path.GetFileNameWithoutExtension(dll), StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(dll);
        foreach (var a in new[] { "featurize-rss", data, copies.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var field = output.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(f => f.StartsWith("peak_rss_bytes="))
                    ?? throw new InvalidOperationException($"the RSS child printed no figure (exit {child.ExitCode}): {output}");
        return long.Parse(field["peak_rss_bytes=".Length..], CultureInfo.InvariantCulture);
    }

    private static (double Cold, double Warm, int Hits) TrainColdThenWarm(string data, string temp, string zip, int threads)
    {
        var cacheRoot = Path.Combine(temp, "cache");
        double Train(string? saveTo, out int hits)
        {
            var clock = Stopwatch.StartNew();
            var options = new ImageClassifierTrainerOptions { Threads = threads, Featurizer = new FeaturizerOptions { CacheRoot = cacheRoot } };
            var counter = new CacheCounter();
            using var trained = new ImageClassifierTrainer(options).Train(data, counter);
            if (saveTo is not null)
                trained.Save(saveTo);
            hits = counter.FromCache;
            return clock.Elapsed.TotalSeconds;
        }
        var cold = Train(null, out _);
        var warm = Train(zip, out int hits);
        return (cold, warm, hits);
    }

    private static (string Split, int Count, int Errors, double Accuracy) Errors(string data, ConvBasePrecision precision, string temp, int threads)
    {
        var options = new ImageClassifierTrainerOptions
        {
            Precision = precision,
            Threads = threads,
            Featurizer = new FeaturizerOptions { CacheRoot = Path.Combine(temp, "accuracy-cache") },
        };
        using var trained = new ImageClassifierTrainer(options).Train(data);
        var report = trained.Reports[0];
        return (report.Split, report.Count, (int)Math.Round(report.Count * (1 - report.MicroAccuracy)), report.MicroAccuracy);
    }

    private sealed class CacheCounter : IProgress<Progress.ProgressEvent>
    {
        public int FromCache;

        public void Report(Progress.ProgressEvent value)
        {
            if (value is Progress.FeaturesCached cached)
                FromCache += cached.FromCache;
        }
    }

    /// <summary>What preparing one image costs on one thread, step by step (what the featurizer adds to ORT's work).</summary>
    private static void DecodeCost(MLContext ml, PreprocessingSpec spec, IReadOnlyList<LabeledImage> images)
    {
        using var maker = new ImagePixelsMaker(spec);
        var validation = new ImageValidationOptions();
        double read = 0, hash = 0, decode = 0, pixels = 0;
        var buffer = new float[maker.Length];
        var clock = new Stopwatch();
        foreach (var image in images)
        {
            clock.Restart();
            using var bytes = ImageDecoder.ReadFile(image.Path, validation).Bytes!;
            read += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            ContentHash.Of(bytes.Span);
            hash += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            using var decoded = ImageDecoder.DecodeBitmap(bytes, validation, DecodeTarget.Full).Bitmap!;
            decode += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            maker.Make(decoded, buffer);
            pixels += clock.Elapsed.TotalMilliseconds;
        }
        int n = images.Count;
        Console.WriteLine(FormattableString.Invariant(
            $"preparing one image on one thread: read {read / n:F2} ms, hash {hash / n:F2} ms, check + decode (+EXIF) {decode / n:F2} ms, resize + pixels (direct, bit-identical to ML.NET's transforms) {pixels / n:F2} ms; total {(read + hash + decode + pixels) / n:F2} ms"));
    }

    private static List<float[]> MakePixels(MLContext ml, PreprocessingSpec spec, IReadOnlyList<LabeledImage> images)
    {
        using var maker = new ImagePixelsMaker(spec);
        return images.Select(i =>
        {
            var pixels = new float[maker.Length];
            return maker.TryMake(i.Path, new ImageValidationOptions(), pixels) ? pixels : throw new InvalidOperationException(i.Path);
        }).ToList();
    }

    private static int StockChain(MLContext ml, IReadOnlyList<LabeledImage> images)
    {
        var data = ml.Data.LoadFromEnumerable(images.Select(i => new PathRow { ImagePath = i.Path }).ToList());
        var chain = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image", ImageResizingEstimator.ResizingKind.IsoCrop))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var model = chain.Fit(data);
        int n = model.Transform(data).GetColumn<float[]>("Features").Count(f => f.Length == 512);
        (model as IDisposable)?.Dispose();
        return n;
    }

    /// <summary>Our featurizer's settings side by side against raw ORT (to choose defaults).</summary>
    public static int Tune(string data, int repeats, int threads)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var images = dataset.All.ToList();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var ml = new MLContext(1);
        var pixels = MakePixels(ml, graph.Preset.Preprocessing, images);
        var ways = new List<(string Name, Func<int> Run)>
        {
            ("raw ORT", () => RawOrt(graph.Path, pixels, graph.Preset.Preprocessing, threads)),
            ("raw ORT spinning", () => RawOrt(graph.Path, pixels, graph.Preset.Preprocessing, threads, spinning: true)),
        };
        foreach (var low in new[] { false, true })
            ways.Add(($"ours, low-priority decoders {low}", () => Pipelines.Features(ml, graph, images, threads, lowPriority: low)));
        var seconds = ways.ToDictionary(w => w.Name, _ => new List<double>());
        for (int round = 0; round <= repeats; round++)
            foreach (var (name, run) in ways)
            {
                var clock = Stopwatch.StartNew();
                run();
                if (round > 0) seconds[name].Add(clock.Elapsed.TotalSeconds);
            }
        foreach (var (name, list) in seconds)
            Console.WriteLine(FormattableString.Invariant($"{name}: median {Median(list):F2} s ({string.Join(" ", list.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))}), ratio to raw {Median(seconds["raw ORT"]) / Median(list):F3}"));
        return 0;
    }

    /// <summary>Raw ORT fp32 (no spinning) on decoded tensors, as (b) runs it.</summary>
    internal static int RawOrtFp32(string onnx, List<float[]> pixels, PreprocessingSpec spec, int threads) => RawOrt(onnx, pixels, spec, threads);

    private static int RawOrt(string onnx, List<float[]> pixels, PreprocessingSpec spec, int threads, bool spinning = false)
    {
        using var session = spinning ? SpinningSession(onnx, threads) : OrtSessions.Create(onnx, threads);
        const int batch = 16;
        int length = pixels[0].Length, done = 0;
        var buffer = new float[batch * length];
        for (int start = 0; start < pixels.Count; start += batch)
        {
            int n = Math.Min(batch, pixels.Count - start);
            for (int i = 0; i < n; i++)
                pixels[start + i].CopyTo(buffer, i * length);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, n * length), [n, 3, spec.Height, spec.Width]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
            done += (int)outputs[0].GetTensorTypeAndShape().Shape[0];
        }
        return done;
    }

    /// <summary>ORT's defaults (worker threads spin between runs) with the thread count set.</summary>
    private static InferenceSession SpinningSession(string onnx, int threads)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new InferenceSession(onnx, options);
    }

    private static (double ZipMs, double RawMs) Latency(MLContext ml, string zip, string onnx, List<float[]> pixels, IReadOnlyList<LabeledImage> images,
        PreprocessingSpec spec, int threads, int repeats)
    {
        // Stock ML.NET only, as an app does: load, one engine, Predict(path).
        var model = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
        // ORT's own defaults (threads spin between runs, as in ML.NET's ApplyOnnxModel): the fastest single run.
        using var session = SpinningSession(onnx, threads);
        var zipTimes = new List<double>();
        var rawTimes = new List<double>();
        // In blocks, not one by one: each session's threads spin for a while after a run and would slow the other's.
        const int block = 20;
        int rounds = 2 * Math.Max(1, repeats);
        for (int round = -1; round < rounds; round++)
        {
            for (int i = 0; i < block; i++)
            {
                int k = ((round + 1) * block + i) % images.Count;
                var clock = Stopwatch.StartNew();
                var output = engine.Predict(new ModelInput { ImagePath = images[k].Path });
                if (round >= 0) zipTimes.Add(clock.Elapsed.TotalMilliseconds);
                if (output.Score.Length == 0) throw new InvalidOperationException("no scores");
            }
            for (int i = 0; i < block; i++)
            {
                int k = ((round + 1) * block + i) % images.Count;
                var clock = Stopwatch.StartNew();
                using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, pixels[k].AsMemory(), [1, 3, spec.Height, spec.Width]);
                using var runOptions = new RunOptions();
                using var outputs = session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
                if (round >= 0) rawTimes.Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        (model as IDisposable)?.Dispose();
        return (Median(zipTimes), Median(rawTimes));
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

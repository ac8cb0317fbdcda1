using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Training;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// The decode modes side by side (issue 16, "decoding is the bound"): what preparing one image costs (the earlier way
/// through ML.NET's PredictionEngine, the direct pixels, the reduced-DCT JPEG decode), the pipeline's images/s with
/// the exact and the reduced decode against raw ONNX Runtime (alternating, round 0 warms up), then the feature
/// difference of the reduced decode from the exact one (the saved model's pixels) on every image of each set, and
/// the trainer's val/test accuracy with each mode.
/// </summary>
internal static class DecodeModesBenchmark
{
    public static int Run(string data, int repeats, int threads, string? caltech, bool accuracy)
    {
        var images = ImageDatasetLoader.Load(data).All.ToList();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var spec = graph.Preset.Preprocessing;
        var ml = new MLContext(1);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {FineTuneEpochBenchmark.RuntimeInfo()}; {threads} ORT threads; {images.Count} images of {data}");
        Costs(spec, images);

        if (repeats > 0)
        {
            var pixels = images.Select(i =>
            {
                var p = new float[3 * spec.Width * spec.Height];
                return new ImagePixelsMaker(spec).TryMake(i.Path, new ImageValidationOptions(), p) ? p : throw new InvalidOperationException(i.Path);
            }).ToList();
            var ways = new List<(string Name, Func<int> Run)>
            {
                ("raw ORT fp32 on decoded tensors", () => FeaturizeBenchmark.RawOrtFp32(graph.Path, pixels, spec, threads)),
                ("ours, exact decode (default)", () => Pipelines.Features(ml, graph, images, threads)),
                ("ours, --reduced-jpeg-decoding", () => Pipelines.Features(ml, graph, images, threads, reducedJpeg: true)),
            };
            var seconds = ways.ToDictionary(w => w.Name, _ => new List<double>());
            for (int round = 0; round <= repeats; round++)
                foreach (var (name, run) in ways)
                {
                    var clock = Stopwatch.StartNew();
                    if (run() != images.Count)
                        throw new InvalidOperationException($"{name}: images missing");
                    if (round > 0)
                        seconds[name].Add(clock.Elapsed.TotalSeconds);
                    Console.WriteLine(FormattableString.Invariant($"  round {round}{(round == 0 ? " (warm-up)" : "")}: {name}: {clock.Elapsed.TotalSeconds:F2} s"));
                }
            double raw = FeaturizeBenchmark.Median(seconds[ways[0].Name]);
            foreach (var (name, list) in seconds)
                Console.WriteLine(FormattableString.Invariant(
                    $"{name}: median {FeaturizeBenchmark.Median(list):F2} s = {images.Count / FeaturizeBenchmark.Median(list):F1} images/s ({string.Join(" ", list.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))}); / raw ORT {raw / FeaturizeBenchmark.Median(list):F3}x"));
        }

        foreach (var set in new[] { data, caltech }.OfType<string>().Where(Directory.Exists))
            Difference(ml, graph, set, threads);
        if (accuracy)
            foreach (var set in new[] { data, caltech }.OfType<string>().Where(Directory.Exists))
                foreach (var reduced in new[] { false, true })
                    Accuracy(set, reduced, threads);
        return 0;
    }

    /// <summary>
    /// Feature extraction + the default head, trained with one decode mode; its report (features made the training
    /// way), then the saved zip scoring the same held-out images the serving way (stock ML.NET decode).
    /// </summary>
    private static void Accuracy(string set, bool reduced, int threads)
    {
        var options = new ImageClassifierTrainerOptions { Threads = threads, Featurizer = new FeaturizerOptions { UseCache = false, ReducedJpegDecoding = reduced } };
        var temp = Directory.CreateTempSubdirectory("mlnt-decode-");
        try
        {
            using var trained = new ImageClassifierTrainer(options).Train(set);
            var report = trained.Reports[0];
            var zip = Path.Combine(temp.FullName, "model.zip");
            trained.Save(zip);
            var dataset = ImageDatasetLoader.Load(set);
            // The split the report is on (the one of the report's size), scored again through the zip.
            var held = dataset.Validation.Count == report.Count ? dataset.Validation : dataset.Test;
            using var classifier = Inference.ImageClassifier.Load(zip);
            int served = held.Count(i => classifier.Predict(i.Path).Label != i.Label);
            Console.WriteLine(FormattableString.Invariant(
                $"accuracy {Path.GetFileName(set)}, feature extraction, reduced JPEG decoding {reduced}: report ({report.Split}, {report.Count} images) {report.MicroAccuracy:F4} = {(int)Math.Round(report.Count * (1 - report.MicroAccuracy))} errors; saved zip on the {held.Count} held-out images {1 - served / (double)held.Count:F4} = {served} errors"));
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    /// <summary>Per-image preparation on one thread: the earlier way (MLImage + ML.NET's transforms in a PredictionEngine), the direct way, the reduced decode.</summary>
    private static void Costs(PreprocessingSpec spec, IReadOnlyList<LabeledImage> images)
    {
        var validation = new ImageValidationOptions();
        var maker = new ImagePixelsMaker(spec);
        var ml = new MLContext(1);
        var model = ImagePixelsPipeline.FromImages(ml.Transforms, spec).Fit(ml.Data.LoadFromEnumerable(new List<ImageRow>()));
        using var engine = ml.Model.CreatePredictionEngine<ImageRow, PixelsRow>(model, ignoreMissingColumns: true, outputSchemaDefinition: SchemaDefinition.Create(typeof(PixelsRow)));
        var buffer = new float[maker.Length];
        var output = new PixelsRow();
        double read = 0, hash = 0, oldDecode = 0, oldPixels = 0, decode = 0, pixels = 0, reducedDecode = 0, reducedPixels = 0;
        int reducedCount = 0;
        var clock = new Stopwatch();
        for (int pass = 0; pass < 2; pass++)
        {
            read = hash = oldDecode = oldPixels = decode = pixels = reducedDecode = reducedPixels = 0;
            reducedCount = 0;
            foreach (var image in images)
            {
                clock.Restart();
                using var bytes = ImageDecoder.ReadFile(image.Path, validation).Bytes!;
                read += clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                ContentHash.Of(bytes.Span);
                hash += clock.Elapsed.TotalMilliseconds;

                clock.Restart();
                using (var decoded = ImageDecoder.Decode(bytes, validation).Image!)
                {
                    oldDecode += clock.Elapsed.TotalMilliseconds;
                    clock.Restart();
                    engine.Predict(new ImageRow { Image = decoded }, ref output);
                    output.Pixels.AsSpan(0, maker.Length).CopyTo(buffer);
                    oldPixels += clock.Elapsed.TotalMilliseconds;
                }

                clock.Restart();
                using (var bitmap = ImageDecoder.DecodeBitmap(bytes, validation, DecodeTarget.Full).Bitmap!)
                {
                    decode += clock.Elapsed.TotalMilliseconds;
                    clock.Restart();
                    maker.Make(bitmap, buffer);
                    pixels += clock.Elapsed.TotalMilliseconds;
                }

                clock.Restart();
                using (var bitmap = ImageDecoder.DecodeBitmap(bytes, validation, new DecodeTarget(spec.Width, spec.Height)).Bitmap!)
                {
                    reducedDecode += clock.Elapsed.TotalMilliseconds;
                    var header = ImageDecoder.ReadHeader(bytes, validation).Header!;
                    if (bitmap.Width * bitmap.Height < header.Width * header.Height)
                        reducedCount++;
                    clock.Restart();
                    maker.Make(bitmap, buffer);
                    reducedPixels += clock.Elapsed.TotalMilliseconds;
                }
            }
        }
        int n = images.Count;
        Console.WriteLine(FormattableString.Invariant($"preparing one image on one thread (second of 2 passes): read {read / n:F2} ms, hash {hash / n:F2} ms"));
        Console.WriteLine(FormattableString.Invariant($"  earlier: check + decode (+EXIF) into an MLImage {oldDecode / n:F2} ms, resize + pixels (ML.NET's transforms, PredictionEngine) {oldPixels / n:F2} ms: {(oldDecode + oldPixels) / n:F2} ms"));
        Console.WriteLine(FormattableString.Invariant($"  now, exact: check + decode (+EXIF) into a bitmap {decode / n:F2} ms, resize + pixels (direct, bit-identical) {pixels / n:F2} ms: {(decode + pixels) / n:F2} ms"));
        Console.WriteLine(FormattableString.Invariant($"  reduced JPEG decoding: check + decode {reducedDecode / n:F2} ms, resize + pixels {reducedPixels / n:F2} ms: {(reducedDecode + reducedPixels) / n:F2} ms ({reducedCount} of {n} decoded at a reduced scale)"));
    }

    /// <summary>Pooled features with the reduced decode against the exact decode (bit-identical to the saved model's chain), every image of a set.</summary>
    private static void Difference(MLContext ml, FeaturizerGraphFile graph, string set, int threads)
    {
        var images = ImageDatasetLoader.Load(set).All.ToList();
        var exact = Pipelines.FeatureVectors(ml, graph, images, threads);
        var reduced = Pipelines.FeatureVectors(ml, graph, images, threads, reducedJpeg: true);
        var cosines = new List<double>();
        double maxRelative = 0;
        int worst = 0;
        for (int i = 0; i < exact.Count; i++)
        {
            var (cos, rel) = Tests.Fixtures.FeatureDifference.Of(exact[i], reduced[i]);
            if (cosines.Count > 0 && cos < cosines.Min())
                worst = i;
            cosines.Add(cos);
            maxRelative = Math.Max(maxRelative, rel);
        }
        Console.WriteLine($"  lowest cosine: {images[worst].Path}");
        int changed = exact.Zip(reduced).Count(p => !p.First.AsSpan().SequenceEqual(p.Second));
        cosines.Sort();
        Console.WriteLine(FormattableString.Invariant(
            $"feature difference {Path.GetFileName(set)} ({exact.Count} images, {changed} changed): cosine min {cosines[0]:F5}, 1st percentile {cosines[cosines.Count / 100]:F5}, median {cosines[cosines.Count / 2]:F5}, mean {cosines.Average():F5}; max relative L2 {maxRelative:F4}"));
    }

    private sealed class ImageRow
    {
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }

    private sealed class PixelsRow
    {
        [ColumnName(ImagePixelsPipeline.PixelsColumn)]
        public float[] Pixels { get; set; } = [];
    }
}

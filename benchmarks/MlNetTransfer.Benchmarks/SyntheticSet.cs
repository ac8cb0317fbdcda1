using System.Globalization;
using MlNetTransfer.Data;
using SkiaSharp;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// A photo set of any size made from a real one, for scaling runs: <c>train/&lt;class&gt;/</c> holds N images, the source's
/// training photos taken in turn, and <c>val/&lt;class&gt;/</c> each of the source's validation photos once. Every file is
/// its photo under a new name with a seeded jitter (a crop of 80-100 % of each side at a random place, brightness and
/// contrast within ±10 %, a left-right flip half the time, JPEG quality 85-95), so each has content of its own (no cache
/// or exact-duplicate hit) and the classes keep their photos. The same source, N and seed give the same files.
/// </summary>
public static class SyntheticSet
{
    public static int Run(string source, string output, int trainImages, int seed)
    {
        var dataset = ImageDatasetLoader.Load(source);
        if (dataset.Train.Count == 0)
        {
            Console.Error.WriteLine($"{source}: no training images");
            return 1;
        }
        var jobs = new List<(LabeledImage Image, string Target, int Index)>();
        for (int i = 0; i < trainImages; i++)
        {
            var image = dataset.Train[i % dataset.Train.Count];
            jobs.Add((image, Target(output, "train", image, i), i));
        }
        for (int i = 0; i < dataset.Validation.Count; i++)
            jobs.Add((dataset.Validation[i], Target(output, "val", dataset.Validation[i], i), trainImages + i));
        int failed = 0;
        Parallel.ForEach(jobs, job =>
        {
            // Not HashCode.Combine: it is seeded anew in every process, and the same seed must give the same files.
            if (!Write(job.Image.Path, job.Target, new Random(unchecked(seed * 1_000_003 + job.Index))))
                Interlocked.Increment(ref failed);
        });
        Console.WriteLine($"wrote {jobs.Count - failed} images to {output}: {trainImages} training ({dataset.Train.Count} photos of {source} in turn), {dataset.Validation.Count} validation; seed {seed}"
            + (failed > 0 ? $"; {failed} source file(s) could not be read" : ""));
        return failed > 0 ? 1 : 0;
    }

    private static string Target(string output, string split, LabeledImage image, int index) =>
        Path.Combine(output, split, image.Label, string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileNameWithoutExtension(image.Path)}-{index:D6}.jpg"));

    private static bool Write(string path, string target, Random random)
    {
        using var bitmap = SKBitmap.Decode(path);
        if (bitmap is null)
            return false;
        int w = (int)(bitmap.Width * (0.8 + 0.2 * random.NextDouble())), h = (int)(bitmap.Height * (0.8 + 0.2 * random.NextDouble()));
        int x = random.Next(bitmap.Width - w + 1), y = random.Next(bitmap.Height - h + 1);
        float gain = (float)(0.9 + 0.2 * random.NextDouble()), offset = (float)((random.NextDouble() - 0.5) * 0.2); // Skia's colour matrix adds in 0..1 units
        bool flip = random.Next(2) == 1;
        int quality = 85 + random.Next(11);
        using var surface = SKSurface.Create(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        if (flip)
        {
            canvas.Translate(w, 0);
            canvas.Scale(-1, 1);
        }
        using var paint = new SKPaint
        {
            ColorFilter = SKColorFilter.CreateColorMatrix([gain, 0, 0, 0, offset, 0, gain, 0, 0, offset, 0, 0, gain, 0, offset, 0, 0, 0, 1, 0]),
        };
        canvas.DrawBitmap(bitmap, new SKRect(x, y, x + w, y + h), new SKRect(0, 0, w, h), paint);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, quality);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var file = File.Create(target);
        data.SaveTo(file);
        return true;
    }
}

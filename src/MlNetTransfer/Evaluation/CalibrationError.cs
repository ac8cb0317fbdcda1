namespace MlNetTransfer.Evaluation;

/// <summary>One bin of a reliability diagram: images whose top probability fell in [<see cref="From"/>, <see cref="To"/>).</summary>
/// <param name="From">Lower edge of the bin.</param>
/// <param name="To">Upper edge (the last bin includes 1).</param>
/// <param name="Count">Images in it.</param>
/// <param name="Confidence">Their mean top probability (NaN when empty).</param>
/// <param name="Accuracy">The share of them classified correctly (NaN when empty).</param>
public sealed record ReliabilityBin(double From, double To, int Count, double Confidence, double Accuracy);

/// <summary>
/// Expected calibration error: the gap between how sure a classifier says it is (its top probability) and how often
/// it is right, averaged over equal-width confidence bins weighted by their images. 0 means a probability of 0.9 is
/// right 9 times in 10; an over-confident head scores high. With a percentile bootstrap interval over the images,
/// because on a few hundred images the estimate itself is noisy.
/// </summary>
public static class CalibrationError
{
    /// <summary>Bins of the reliability diagram and of the error. Default 15 (the usual choice since Guo et al., 2017).</summary>
    public const int DefaultBins = 15;

    /// <summary>The reliability diagram's bins.</summary>
    public static IReadOnlyList<ReliabilityBin> Bins(IReadOnlyList<EvaluatedImage> images, int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        var count = new int[bins];
        var confidence = new double[bins];
        var right = new int[bins];
        foreach (var image in images)
        {
            int b = Bin(image.PredictedProbability, bins);
            count[b]++;
            confidence[b] += image.PredictedProbability;
            if (image.Predicted == image.Actual)
                right[b]++;
        }
        return Enumerable.Range(0, bins).Select(b => new ReliabilityBin(b / (double)bins, (b + 1) / (double)bins, count[b],
            count[b] == 0 ? double.NaN : confidence[b] / count[b], count[b] == 0 ? double.NaN : right[b] / (double)count[b])).ToList();
    }

    /// <summary>The expected calibration error of these predictions (0 for none).</summary>
    public static double Of(IReadOnlyList<EvaluatedImage> images, int bins = DefaultBins)
    {
        if (images.Count == 0)
            return 0;
        return Bins(images, bins).Where(b => b.Count > 0).Sum(b => b.Count * Math.Abs(b.Accuracy - b.Confidence)) / images.Count;
    }

    /// <summary>The 95 % percentile-bootstrap interval of <see cref="Of"/>: the images resampled with replacement, seeded.</summary>
    public static (double Low, double High) Interval(IReadOnlyList<EvaluatedImage> images, int seed = 1, int resamples = 1000, int bins = DefaultBins)
    {
        if (images.Count == 0)
            return (0, 0);
        var random = new Random(seed);
        var sample = new EvaluatedImage[images.Count];
        var errors = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < sample.Length; i++)
                sample[i] = images[random.Next(images.Count)];
            errors[r] = Of(sample, bins);
        }
        Array.Sort(errors);
        return (errors[(int)Math.Floor(0.025 * (resamples - 1))], errors[(int)Math.Ceiling(0.975 * (resamples - 1))]);
    }

    /// <summary>
    /// How large the error of a perfectly calibrated classifier would come out on these images: each image's top
    /// probability kept, whether it is right drawn with that probability (Broecker and Smith's consistency resampling),
    /// seeded; the 95th percentile of those errors. An error at or below it is consistent with calibration: on a few
    /// hundred images, the estimate has a floor well above 0.
    /// </summary>
    public static double ConsistencyBound(IReadOnlyList<EvaluatedImage> images, int seed = 1, int resamples = 1000, int bins = DefaultBins)
    {
        if (images.Count == 0)
            return 0;
        // Each bin keeps its images and their confidence (as Bins counts them); only which are right is drawn.
        var observed = Bins(images, bins);
        var random = new Random(seed);
        var errors = new double[resamples];
        var right = new int[bins];
        for (int r = 0; r < resamples; r++)
        {
            Array.Clear(right);
            foreach (var image in images)
                if (random.NextDouble() < image.PredictedProbability)
                    right[Bin(image.PredictedProbability, bins)]++;
            double e = 0;
            for (int b = 0; b < bins; b++)
                if (observed[b].Count > 0)
                    e += Math.Abs(right[b] - observed[b].Count * observed[b].Confidence);
            errors[r] = e / images.Count;
        }
        Array.Sort(errors);
        return errors[(int)Math.Ceiling(0.95 * (resamples - 1))];
    }

    private static int Bin(float probability, int bins) => Math.Clamp((int)(probability * bins), 0, bins - 1);
}

namespace MlNetTransfer.Evaluation;

/// <summary>
/// Two classifiers scored on the same images: how much better the second is, and whether that is beyond the noise of
/// the comparison. Accuracy is compared by McNemar's exact test on the images where exactly one of them is right (the
/// images both get right or both get wrong say nothing about which is better, and the exact binomial form holds for the
/// few dozen disagreements a small validation set gives); the margins, in accuracy and in log-loss, get paired
/// bootstrap intervals (the same resampled images for both, so the images' own difficulty cancels out).
/// </summary>
internal sealed record PairedComparison
{
    /// <summary>Images compared.</summary>
    public required int Images { get; init; }

    /// <summary>Images only the first classifier gets right.</summary>
    public required int OnlyFirstRight { get; init; }

    /// <summary>Images only the second classifier gets right.</summary>
    public required int OnlySecondRight { get; init; }

    /// <summary>Accuracy of the second minus that of the first.</summary>
    public required double AccuracyGain { get; init; }

    /// <summary>95 % paired bootstrap interval of <see cref="AccuracyGain"/>.</summary>
    public required (double Low, double High) AccuracyGainInterval { get; init; }

    /// <summary>Two-sided p-value of McNemar's exact test (1 when the two never disagree).</summary>
    public required double McNemarP { get; init; }

    /// <summary>Mean log-loss of the first minus that of the second (positive: the second is better).</summary>
    public required double LogLossGain { get; init; }

    /// <summary>95 % paired bootstrap interval of <see cref="LogLossGain"/>.</summary>
    public required (double Low, double High) LogLossGainInterval { get; init; }

    /// <summary>The second is more accurate beyond the noise: McNemar's p below <paramref name="alpha"/>, in its favour.</summary>
    public bool SecondIsBetter(double alpha = 0.05) => OnlySecondRight > OnlyFirstRight && McNemarP < alpha;

    /// <summary>Compares two reports of the same images (matched by path; an image in only one of them is an error).</summary>
    public static PairedComparison Of(ClassificationReport first, ClassificationReport second, int bootstrapSamples = 2000, int seed = 0)
    {
        var other = second.Images.ToDictionary(i => i.Path, StringComparer.Ordinal);
        if (other.Count != first.Images.Count || first.Images.Any(i => !other.ContainsKey(i.Path)))
            throw new ArgumentException("the two reports are not of the same images");
        var a = first.Images;
        var b = a.Select(i => other[i.Path]).ToList();
        return Of(a.Select(i => i.Predicted == i.Actual).ToList(), b.Select(i => i.Predicted == i.Actual).ToList(),
            a.Select(i => i.Loss).ToList(), b.Select(i => i.Loss).ToList(), bootstrapSamples, seed);
    }

    /// <summary>Compares per-image outcomes (right or wrong, and the loss) of two classifiers, image by image.</summary>
    public static PairedComparison Of(IReadOnlyList<bool> firstRight, IReadOnlyList<bool> secondRight, IReadOnlyList<double> firstLoss,
        IReadOnlyList<double> secondLoss, int bootstrapSamples = 2000, int seed = 0)
    {
        int n = firstRight.Count;
        if (n == 0 || secondRight.Count != n || firstLoss.Count != n || secondLoss.Count != n)
            throw new ArgumentException("the outcomes of both classifiers, one per image, are needed");
        var accuracy = new double[n];
        var loss = new double[n];
        int onlyFirst = 0, onlySecond = 0;
        for (int i = 0; i < n; i++)
        {
            accuracy[i] = (secondRight[i] ? 1 : 0) - (firstRight[i] ? 1 : 0);
            loss[i] = firstLoss[i] - secondLoss[i];
            if (firstRight[i] && !secondRight[i]) onlyFirst++;
            if (secondRight[i] && !firstRight[i]) onlySecond++;
        }
        return new PairedComparison
        {
            Images = n,
            OnlyFirstRight = onlyFirst,
            OnlySecondRight = onlySecond,
            AccuracyGain = accuracy.Average(),
            LogLossGain = loss.Average(),
            McNemarP = McNemarExact(onlyFirst, onlySecond),
            AccuracyGainInterval = Bootstrap(accuracy, bootstrapSamples, seed),
            LogLossGainInterval = Bootstrap(loss, bootstrapSamples, seed),
        };
    }

    /// <summary>Two-sided exact McNemar: twice the binomial(b + c, 1/2) tail at min(b, c), at most 1.</summary>
    public static double McNemarExact(int b, int c)
    {
        int n = b + c, k = Math.Min(b, c);
        if (n == 0)
            return 1;
        // In logs: C(n, i) 2^-n underflows for the thousands of images a large validation set may give.
        double logHalfN = -n * Math.Log(2), tail = 0, logChoose = 0;
        for (int i = 0; i <= k; i++)
        {
            if (i > 0)
                logChoose += Math.Log(n - i + 1) - Math.Log(i);
            tail += Math.Exp(logChoose + logHalfN);
        }
        return Math.Min(1, 2 * tail);
    }

    /// <summary>The 2.5 and 97.5 percentiles of the mean of <paramref name="differences"/> over seeded resamples of the images.</summary>
    private static (double Low, double High) Bootstrap(double[] differences, int samples, int seed)
    {
        var random = new Random(seed);
        var means = new double[samples];
        int n = differences.Length;
        for (int s = 0; s < samples; s++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++)
                sum += differences[random.Next(n)];
            means[s] = sum / n;
        }
        Array.Sort(means);
        return (means[(int)Math.Floor(0.025 * (samples - 1))], means[(int)Math.Ceiling(0.975 * (samples - 1))]);
    }
}

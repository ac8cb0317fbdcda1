namespace MlNetTransfer.Training;

/// <summary>
/// How far an image's pooled features lie from every class the model knows: the squared Mahalanobis distance of the
/// L2-normalised feature vector to the nearest class mean, under one covariance shared by the classes and shrunk
/// towards a multiple of the identity by the Ledoit-Wolf estimate (a few hundred images cannot fill a 512 x 512
/// covariance: unshrunk, the distance ranks badly), divided by the feature length so typical training images score near 1.
/// The same arithmetic runs in the saved graph (<see cref="Onnx.NoveltyGraph"/>); this is the copy the trainer fits
/// the threshold with.
/// </summary>
internal sealed class NoveltyScorer
{
    /// <summary>Longest feature vector a covariance is fitted for (a Flatten-pooled base gives tens of thousands).</summary>
    public const int MaxFeatureLength = 4096;

    private NoveltyScorer(float[] whitening, float[][] whitenedMeans, int length, double shrinkage)
    {
        Whitening = whitening;
        WhitenedMeans = whitenedMeans;
        Length = length;
        Shrinkage = shrinkage;
    }

    /// <summary>W, row-major [length, length]: z = x W whitens a normalised feature row x (W = L^-T for the covariance L L^T).</summary>
    public float[] Whitening { get; }

    /// <summary>Each class mean (of normalised features) times W, [classes][length].</summary>
    public float[][] WhitenedMeans { get; }

    public int Length { get; }

    /// <summary>The Ledoit-Wolf shrinkage weight used (0: the sample covariance, 1: a multiple of the identity).</summary>
    public double Shrinkage { get; }

    /// <summary>Fits on the features of images with their class indexes; a class with no image has no mean.</summary>
    public static NoveltyScorer Fit(IReadOnlyList<float[]> features, IReadOnlyList<int> classes)
    {
        if (features.Count < 2)
            throw new ArgumentException("at least two images are needed to fit a covariance", nameof(features));
        int p = features[0].Length, n = features.Count;
        var x = features.Select(Normalized).ToArray();
        var means = new Dictionary<int, double[]>();
        foreach (var group in Enumerable.Range(0, n).GroupBy(i => classes[i]).OrderBy(g => g.Key))
        {
            var mean = new double[p];
            foreach (var i in group)
                for (int j = 0; j < p; j++)
                    mean[j] += x[i][j];
            for (int j = 0; j < p; j++)
                mean[j] /= group.Count();
            means[group.Key] = mean;
        }
        // Within-class residuals: one covariance for all classes.
        var z = new double[n][];
        for (int i = 0; i < n; i++)
        {
            var m = means[classes[i]];
            z[i] = new double[p];
            for (int j = 0; j < p; j++)
                z[i][j] = x[i][j] - m[j];
        }
        var (covariance, shrinkage) = LedoitWolf(z, p);
        var lower = Cholesky(covariance, p);
        var inverse = InvertLower(lower, p);
        // W = L^-T: W[a, b] = inverse[b, a].
        var w = new float[p * p];
        for (int a = 0; a < p; a++)
            for (int b = 0; b < p; b++)
                w[a * p + b] = (float)inverse[b * p + a];
        int k = means.Keys.Max() + 1;
        var whitenedMeans = new float[k][];
        for (int c = 0; c < k; c++)
            whitenedMeans[c] = means.TryGetValue(c, out var mean) ? Whiten(mean, inverse, p) : [];
        return new NoveltyScorer(w, whitenedMeans, p, shrinkage);
    }

    /// <summary>The novelty of one feature vector.</summary>
    public double Score(float[] features)
    {
        var x = Normalized(features);
        var z = new double[Length];
        for (int a = 0; a < Length; a++)
        {
            double xa = x[a];
            if (xa == 0)
                continue;
            int row = a * Length;
            for (int b = 0; b < Length; b++)
                z[b] += xa * Whitening[row + b];
        }
        double best = double.PositiveInfinity;
        foreach (var m in WhitenedMeans)
        {
            if (m.Length == 0)
                continue;
            double d = 0;
            for (int j = 0; j < Length; j++)
            {
                double e = z[j] - m[j];
                d += e * e;
            }
            best = Math.Min(best, d);
        }
        return best / Length;
    }

    /// <summary>
    /// The threshold above which a fraction <paramref name="falseAlarmRate"/> of images like the training ones score: from
    /// out-of-fold scores (each training image scored by a scorer fitted without its fold), since a scorer rates the
    /// images it was fitted on as more typical than new ones.
    /// </summary>
    public static (double Threshold, int Folds, double[] OutOfFold) Threshold(IReadOnlyList<float[]> features, IReadOnlyList<int> classes, double falseAlarmRate, int folds, int seed)
    {
        int n = features.Count;
        folds = Math.Clamp(folds, 2, n);
        // Stratified: each class dealt round-robin over the folds in a seeded order.
        var fold = new int[n];
        var random = new Random(seed);
        int next = 0;
        foreach (var group in Enumerable.Range(0, n).GroupBy(i => classes[i]).OrderBy(g => g.Key))
        {
            var members = group.ToArray();
            random.Shuffle(members);
            foreach (var i in members)
                fold[i] = next++ % folds;
        }
        var scores = new double[n];
        for (int f = 0; f < folds; f++)
        {
            var rest = Enumerable.Range(0, n).Where(i => fold[i] != f).ToList();
            var scorer = Fit(rest.Select(i => features[i]).ToList(), rest.Select(i => classes[i]).ToList());
            for (int i = 0; i < n; i++)
                if (fold[i] == f)
                    scores[i] = scorer.Score(features[i]);
        }
        return (Quantile(scores, falseAlarmRate), folds, scores);
    }

    /// <summary>The smallest score that at most <paramref name="rate"/> of <paramref name="scores"/> exceed.</summary>
    public static double Quantile(IReadOnlyList<double> scores, double rate)
    {
        var sorted = scores.Order().ToArray();
        int index = Math.Clamp((int)Math.Ceiling((1 - rate) * sorted.Length) - 1, 0, sorted.Length - 1);
        return sorted[index];
    }

    private static double[] Normalized(float[] v)
    {
        double norm = 0;
        foreach (var f in v)
            norm += (double)f * f;
        norm = Math.Max(Math.Sqrt(norm), Onnx.NoveltyGraph.NormFloor);
        return v.Select(f => f / norm).ToArray();
    }

    private static float[] Whiten(double[] x, double[] inverse, int p)
    {
        // z = L^-1 x.
        var z = new float[p];
        for (int a = 0; a < p; a++)
        {
            double s = 0;
            for (int b = 0; b <= a; b++)
                s += inverse[a * p + b] * x[b];
            z[a] = (float)s;
        }
        return z;
    }

    /// <summary>Ledoit and Wolf (2004)'s shrunk covariance of centred rows, as scikit-learn's <c>ledoit_wolf(assume_centered=True)</c>.</summary>
    internal static (double[] Covariance, double Shrinkage) LedoitWolf(double[][] z, int p)
    {
        int n = z.Length;
        var s = new double[p * p];
        var s2 = new double[p * p];
        Parallel.For(0, p, a =>
        {
            for (int b = a; b < p; b++)
            {
                double v = 0, v2 = 0;
                for (int i = 0; i < n; i++)
                {
                    double za = z[i][a], zb = z[i][b];
                    v += za * zb;
                    v2 += za * za * zb * zb;
                }
                s[a * p + b] = s[b * p + a] = v;
                s2[a * p + b] = s2[b * p + a] = v2;
            }
        });
        double trace = 0;
        for (int a = 0; a < p; a++)
            trace += s[a * p + a] / n;
        double mu = trace / p;
        double delta = 0, beta = 0;
        for (int q = 0; q < p * p; q++)
        {
            double c = s[q] / n;
            delta += c * c;
            beta += s2[q];
        }
        // scikit-learn's terms: beta = (sum x^2 x^2 / n - sum cov^2) / (p n), delta = (sum cov^2 - 2 mu trace + p mu^2) / p.
        double sumCov2 = delta;
        beta = (beta / n - sumCov2) / ((double)p * n);
        delta = (sumCov2 - 2 * mu * trace + p * mu * mu) / p;
        double shrinkage = delta <= 0 ? 1 : Math.Min(beta, delta) / delta;
        shrinkage = Math.Clamp(shrinkage, 0, 1);
        var covariance = new double[p * p];
        for (int q = 0; q < p * p; q++)
            covariance[q] = (1 - shrinkage) * s[q] / n;
        // A floor on the diagonal: features that never vary (always 0 after a ReLU) would leave it singular.
        double floor = Math.Max(mu, 1e-12) * 1e-6;
        for (int a = 0; a < p; a++)
            covariance[a * p + a] += shrinkage * mu + floor;
        return (covariance, shrinkage);
    }

    private static double[] Cholesky(double[] a, int p)
    {
        var l = new double[p * p];
        for (int j = 0; j < p; j++)
        {
            double d = a[j * p + j];
            for (int k = 0; k < j; k++)
                d -= l[j * p + k] * l[j * p + k];
            if (d <= 0)
                throw new InvalidOperationException("the shared feature covariance is not positive definite");
            double ljj = Math.Sqrt(d);
            l[j * p + j] = ljj;
            Parallel.For(j + 1, p, i =>
            {
                double v = a[i * p + j];
                for (int k = 0; k < j; k++)
                    v -= l[i * p + k] * l[j * p + k];
                l[i * p + j] = v / ljj;
            });
        }
        return l;
    }

    private static double[] InvertLower(double[] l, int p)
    {
        var inv = new double[p * p];
        // Column by column: L x = e_c, forward substitution.
        Parallel.For(0, p, c =>
        {
            var x = new double[p];
            for (int i = c; i < p; i++)
            {
                double v = i == c ? 1 : 0;
                for (int k = c; k < i; k++)
                    v -= l[i * p + k] * x[k];
                x[i] = v / l[i * p + i];
            }
            for (int i = c; i < p; i++)
                inv[i * p + c] = x[i];
        });
        return inv;
    }
}

namespace MlNetTransfer.Evaluation;

/// <summary>
/// Temperature scaling (Guo et al., 2017): one number T &gt; 0 divides every logit, softmax(z / T). T &gt; 1 makes an
/// over-confident model less sure, T &lt; 1 a timid one surer; the predicted class never changes, so accuracy does not
/// either. T is fitted by minimum log-loss on held-out predictions, and works on probabilities alone
/// (softmax(log p / T) = softmax(z / T)), so it folds into any softmax head as W / T and b / T.
/// </summary>
public static class TemperatureScaling
{
    /// <summary>The range searched; a temperature at either end means the held-out predictions say little.</summary>
    public const double MinTemperature = 0.05, MaxTemperature = 20;

    /// <summary>The temperature of lowest mean log-loss on <paramref name="probabilities"/> with true classes <paramref name="labels"/>.</summary>
    public static double Fit(IReadOnlyList<float[]> probabilities, IReadOnlyList<int> labels)
    {
        if (probabilities.Count != labels.Count)
            throw new ArgumentException($"{probabilities.Count} probability vectors and {labels.Count} labels");
        if (probabilities.Count == 0)
            return 1;
        var logs = probabilities.Select(p => p.Select(v => Math.Log(Math.Max(v, 1e-30))).ToArray()).ToArray();
        // The log-loss is convex in 1/T, so a golden-section search over log T finds its one minimum.
        double a = Math.Log(MinTemperature), b = Math.Log(MaxTemperature);
        double ratio = (Math.Sqrt(5) - 1) / 2;
        double c = b - ratio * (b - a), d = a + ratio * (b - a);
        double fc = LogLoss(logs, labels, Math.Exp(c)), fd = LogLoss(logs, labels, Math.Exp(d));
        while (b - a > 1e-6)
        {
            if (fc <= fd)
            {
                (b, d, fd) = (d, c, fc);
                c = b - ratio * (b - a);
                fc = LogLoss(logs, labels, Math.Exp(c));
            }
            else
            {
                (a, c, fc) = (c, d, fd);
                d = a + ratio * (b - a);
                fd = LogLoss(logs, labels, Math.Exp(d));
            }
        }
        return Math.Exp((a + b) / 2);
    }

    /// <summary>
    /// <see cref="Fit"/>, or null with the reason when the predictions cannot support a temperature: when every one is
    /// right, the log-loss keeps falling as T goes to 0 (a model made ever surer), and a minimum at the end of the range
    /// searched says the same.
    /// </summary>
    public static double? TryFit(IReadOnlyList<float[]> probabilities, IReadOnlyList<int> labels, out string? reason)
    {
        reason = null;
        int wrong = probabilities.Where((p, i) => Training.LbfgsHeadTrainer.ArgMax(p) != labels[i]).Count();
        if (wrong == 0)
        {
            reason = $"all {probabilities.Count} held-out predictions are right, so they support no temperature (their log-loss falls without end as T goes to 0)";
            return null;
        }
        double t = Fit(probabilities, labels);
        if (t <= MinTemperature * 1.01 || t >= MaxTemperature / 1.01)
        {
            reason = FormattableString.Invariant($"the best temperature on {probabilities.Count} held-out predictions lies at the end of the range searched ({t:G3})");
            return null;
        }
        return t;
    }

    /// <summary>softmax(log p / T): the probabilities a head with its logits divided by <paramref name="temperature"/> gives.</summary>
    public static float[] Apply(float[] probabilities, double temperature)
    {
        var scaled = probabilities.Select(v => Math.Log(Math.Max(v, 1e-30)) / temperature).ToArray();
        double max = scaled.Max();
        var e = scaled.Select(s => Math.Exp(s - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }

    /// <summary>Mean -ln p(true class) after scaling by <paramref name="temperature"/>.</summary>
    public static double LogLoss(IReadOnlyList<float[]> probabilities, IReadOnlyList<int> labels, double temperature) =>
        LogLoss(probabilities.Select(p => p.Select(v => Math.Log(Math.Max(v, 1e-30))).ToArray()).ToArray(), labels, temperature);

    private static double LogLoss(double[][] logs, IReadOnlyList<int> labels, double temperature)
    {
        double total = 0;
        for (int i = 0; i < logs.Length; i++)
        {
            var row = logs[i];
            double max = double.NegativeInfinity;
            foreach (var v in row)
                max = Math.Max(max, v / temperature);
            double sum = 0;
            foreach (var v in row)
                sum += Math.Exp(v / temperature - max);
            total -= row[labels[i]] / temperature - max - Math.Log(sum);
        }
        return total / logs.Length;
    }
}

using MlNetTransfer.Training;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>
/// fastai's learning-rate range test as a callback: before each batch the rate grows exponentially from
/// <paramref name="start"/> to <paramref name="end"/> over <paramref name="steps"/> batches (each group at its factor
/// of it); after each the loss is smoothed (exponential average, bias-corrected); the fit stops once it diverges (4x
/// its minimum) or the steps are done. <see cref="Sweep"/> suggests a rate well inside the stretch where the loss falls.
/// </summary>
internal sealed class LearningRateFinder(double start, double end, int steps, IReadOnlyList<double> groupFactors) : Callback
{
    private readonly List<LearningRatePoint> _points = [];
    private double _average, _best = double.MaxValue, _rate;
    private bool _diverged;

    public override void BeforeBatch(FitContext context)
    {
        _rate = start * Math.Pow(end / start, context.Step / (double)(steps - 1));
        int g = 0;
        foreach (var group in context.Phase.Optimizer.ParamGroups)
            group.LearningRate = _rate * groupFactors[g++];
    }

    public override void AfterBatch(FitContext context, double loss)
    {
        int n = _points.Count;
        _average = 0.98 * _average + 0.02 * loss;
        double smoothed = _average / (1 - Math.Pow(0.98, n + 1));
        _points.Add(new LearningRatePoint(_rate, loss, smoothed));
        _best = Math.Min(_best, smoothed);
        if (double.IsNaN(smoothed) || smoothed > 4 * _best)
        {
            _diverged = true;
            context.StopNow = true;
        }
        if (_points.Count >= steps)
            context.StopNow = true;
    }

    public LearningRateSweep Sweep() => new(_points, Suggest(_points), _points.MinBy(p => p.SmoothedLoss)!.LearningRate, _diverged);

    /// <summary>
    /// fastai's "valley" suggestion (its default since 2.5): the longest stretch over which the smoothed loss keeps
    /// falling (a longest decreasing subsequence), and the rate 45 % of the way along it. Unlike the steepest slope, a
    /// noisy drop among the first batches does not decide it.
    /// </summary>
    public static double Suggest(IReadOnlyList<LearningRatePoint> points)
    {
        int n = points.Count;
        var longest = new int[n];
        int end = 0;
        for (int i = 0; i < n; i++)
        {
            longest[i] = 1;
            for (int j = 0; j < i; j++)
                if (points[i].SmoothedLoss < points[j].SmoothedLoss && longest[i] < longest[j] + 1)
                    longest[i] = longest[j] + 1;
            if (longest[i] > longest[end])
                end = i;
        }
        int start = end - longest[end];
        double third = (end - start) / 3.0;
        int index = Math.Clamp(start + (int)third + (int)(third / 2), 0, n - 1);
        return points[index].LearningRate;
    }
}

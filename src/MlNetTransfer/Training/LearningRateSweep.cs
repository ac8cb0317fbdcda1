namespace MlNetTransfer.Training;

/// <summary>One step of the learning-rate range test: the rate, the batch loss and its smoothed value.</summary>
public sealed record LearningRatePoint(double LearningRate, double Loss, double SmoothedLoss);

/// <summary>The sweep and the rate it suggests (fastai's <c>lr_find</c> "valley": well inside the stretch where the smoothed loss falls).</summary>
public sealed record LearningRateSweep(IReadOnlyList<LearningRatePoint> Points, double Suggested, double MinimumLossRate, bool Diverged);

/// <summary>The rates the range test sweeps: from <see cref="Start"/> to <see cref="End"/>, exponentially, over <see cref="Steps"/> mini-batches.</summary>
public sealed record LearningRateRange
{
    /// <summary>Smallest rate. Default 1e-6.</summary>
    public double Start { get; init; } = 1e-6;

    /// <summary>Largest rate (the sweep stops earlier once the loss diverges). Default 10.</summary>
    public double End { get; init; } = 10;

    /// <summary>Mini-batches. Default 100.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Throws <see cref="TrainingOptionsException"/> for a range that cannot be swept.</summary>
    public void Validate()
    {
        if (!(double.IsFinite(Start) && Start > 0))
            throw new TrainingOptionsException("Range.Start", "Range.Start must be a positive number.");
        if (!(double.IsFinite(End) && End > Start))
            throw new TrainingOptionsException("Range.End", "Range.End must be larger than Range.Start.");
        if (Steps < 10)
            throw new TrainingOptionsException("Range.Steps", "Range.Steps must be at least 10.");
    }
}

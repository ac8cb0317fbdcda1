namespace MlNetTransfer.Training;

/// <summary>A way of learning the task that the learning curve measures.</summary>
public enum LearningCurveMethod
{
    /// <summary>A small CNN trained from random weights on 64x64 pixels: no transfer at all.</summary>
    FromScratch,

    /// <summary>Feature extraction with the L-BFGS head, the trainer's defaults.</summary>
    FeatureExtraction,

    /// <summary>Fine-tuning the top block with the trainer's default recipe.</summary>
    FineTuning,
}

/// <summary>What <see cref="ImageClassifierTrainer.LearningCurve(string, LearningCurveOptions?, IProgress{Progress.ProgressEvent}?, CancellationToken)"/> measures.</summary>
public sealed record LearningCurveOptions
{
    /// <summary>Training images per class of the subsamples; sizes at or above the smallest class are dropped, and every training image is always the last point. Default 1, 2, 5, 10, 20, 50.</summary>
    public IReadOnlyList<int> ImagesPerClass { get; init; } = [1, 2, 5, 10, 20, 50];

    /// <summary>Seeded subsamples per size (the point with every image has one). Default 3.</summary>
    public int Repeats { get; init; } = 3;

    /// <summary>Default: all three, from scratch, feature extraction and fine-tuning.</summary>
    public IReadOnlyList<LearningCurveMethod> Methods { get; init; } = [LearningCurveMethod.FromScratch, LearningCurveMethod.FeatureExtraction, LearningCurveMethod.FineTuning];

    /// <summary>Wall-clock time for the whole curve; points that would start after it are skipped, and listed. Default 60 minutes.</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromMinutes(60);

    /// <summary>Side of the from-scratch CNN's input pixels. Default 64.</summary>
    public int ScratchSide { get; init; } = 64;

    /// <summary>Epochs of the from-scratch CNN. Default 40.</summary>
    public int ScratchEpochs { get; init; } = 40;

    internal void Validate()
    {
        void Require(bool ok, string option, string problem)
        {
            if (!ok)
                throw new TrainingOptionsException(option, $"{option} {problem}.");
        }
        Require(ImagesPerClass.Count > 0 && ImagesPerClass.All(n => n >= 1), "Curve.ImagesPerClass", "must hold at least one size, each at least 1");
        Require(Repeats >= 1, "Curve.Repeats", "must be at least 1");
        Require(Methods.Count > 0 && Methods.Distinct().Count() == Methods.Count, "Curve.Methods", "must name at least one method, each once");
        Require(TimeBudget > TimeSpan.Zero, "Curve.TimeBudget", "must be positive");
        Require(ScratchSide is >= 16 and <= 256, "Curve.ScratchSide", "must be between 16 and 256");
        Require(ScratchEpochs >= 1, "Curve.ScratchEpochs", "must be at least 1");
    }
}

/// <summary>One measured point: a method trained on a seeded subsample, scored on images no subsample trained on.</summary>
/// <param name="Method">What trained.</param>
/// <param name="ImagesPerClass">Images per class of the subsample (for the point with every image: the mean per class).</param>
/// <param name="AllImages">The point with every training image.</param>
/// <param name="Repeat">Which seeded subsample (0-based).</param>
/// <param name="TrainingImages">Images it trained on.</param>
/// <param name="Accuracy">Accuracy on the evaluation images.</param>
/// <param name="Seconds">Wall-clock time of the point.</param>
public sealed record LearningCurvePoint(LearningCurveMethod Method, double ImagesPerClass, bool AllImages, int Repeat, int TrainingImages, double Accuracy, double Seconds);

/// <summary>
/// A power law fitted to a method's mean error against images per class, error = a * n^-b (least squares in logs), and
/// what it says as many images again per class would buy.
/// </summary>
public sealed record LearningCurveFit(LearningCurveMethod Method, double A, double B, double AtImagesPerClass, double MoreImagesPerClass, double Accuracy, double ProjectedAccuracy)
{
    /// <summary>The projection in words.</summary>
    public string Sentence => B <= 0
        ? $"{LearningCurveResult.Words(Method)}: the error does not fall with more images on this curve; no gain from more is measurable"
        : FormattableString.Invariant($"{LearningCurveResult.Words(Method)}: about {((ProjectedAccuracy - Accuracy) * 100):+0.0;-0.0} points with {MoreImagesPerClass:F0} more images per class ({Accuracy:F3} -> {ProjectedAccuracy:F3}; error = {A:G3} n^-{B:F2})");
}

/// <summary>The learning curve of one data set: every point, the fitted curves, and what was skipped.</summary>
public sealed record LearningCurveResult(string Data, string EvaluatedOn, int EvaluationImages, IReadOnlyList<string> Classes,
    IReadOnlyList<LearningCurvePoint> Points, IReadOnlyList<LearningCurveFit> Fits, IReadOnlyList<string> Skipped)
{
    /// <summary>How each method trained, in words (for the page and the console).</summary>
    public IReadOnlyDictionary<string, string> Recipes { get; init; } = new Dictionary<string, string>();

    /// <summary>A method in words.</summary>
    public static string Words(LearningCurveMethod method) => method switch
    {
        LearningCurveMethod.FromScratch => "from scratch",
        LearningCurveMethod.FeatureExtraction => "feature extraction",
        _ => "fine-tuning",
    };
}

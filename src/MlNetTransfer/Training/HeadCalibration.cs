using MlNetTransfer.Evaluation;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>
/// Fits the saved head's temperature on predictions of images the head that made them did not train on: the L-BFGS
/// head's out-of-fold predictions of every training image (never a reported split), else the first fit's predictions
/// of the images that chose its epoch (the trainer's held-out share, or the validation split).
/// </summary>
internal static class HeadCalibration
{
    /// <summary>Fewer held-out predictions than this say too little about confidence: the head is left as trained.</summary>
    public const int MinImages = 20;

    /// <summary>Sets <paramref name="final"/>'s temperature and says how it was found; null when it is left at 1.</summary>
    /// <param name="final">The head that is saved.</param>
    /// <param name="candidate">The run's first fit, with its predictions of the images it chose on.</param>
    /// <param name="chooseOnSplit">The name the report gives those images (null when they are not reported).</param>
    /// <param name="progress">Where the temperature is said.</param>
    public static ModelMetadata.CalibrationInfo? Fit(FittedHead final, FirstFit candidate, string? chooseOnSplit, IProgress<ProgressEvent>? progress)
    {
        if (!candidate.Run.Options.Calibrate)
            return null;
        var classes = candidate.Run.Dataset.Classes;
        IReadOnlyList<ImageViews> images;
        float[][] probabilities;
        string fittedOn;
        string? fittedOnSplit = null;
        if (final.OutOfFold is { } oof)
        {
            (images, probabilities) = (oof.Images, oof.Probabilities);
            fittedOn = $"out-of-fold predictions of the {images.Count} training images ({oof.Folds}-fold cross-validation at the saved L2)";
        }
        else if (candidate.Scored is { } scored)
        {
            (images, probabilities) = (candidate.ChooseOn.Images, scored);
            fittedOn = candidate.Split.MadeByTrainer
                ? $"the first fit's predictions of the {images.Count} training images held out to choose its epoch"
                : $"the first fit's predictions of the {images.Count} validation images, which chose its epoch";
            fittedOnSplit = chooseOnSplit;
        }
        else
        {
            progress.Note("not calibrated: no held-out predictions to fit a temperature on");
            return null;
        }
        if (images.Count < MinImages)
        {
            progress.Note($"not calibrated: {images.Count} held-out predictions, fewer than the {MinImages} a temperature is fitted on");
            return null;
        }
        var labels = images.Select(i => LbfgsHeadTrainer.IndexOf(classes, i.Image.Label)).ToList();
        if (TemperatureScaling.TryFit(probabilities, labels, out var reason) is not { } t)
        {
            progress.Note($"not calibrated: {reason}; the head is saved as trained");
            return null;
        }
        final.Temperature = t;
        var info = new ModelMetadata.CalibrationInfo(t, fittedOn, images.Count, TemperatureScaling.LogLoss(probabilities, labels, 1),
            TemperatureScaling.LogLoss(probabilities, labels, t)) { FittedOnSplit = fittedOnSplit };
        progress.Note(FormattableString.Invariant(
            $"calibrated: temperature {t:F3} fitted on {fittedOn} (their log-loss {info.LogLossBefore:F4} -> {info.LogLossAfter:F4}); folded into the head's weights"));
        return info;
    }
}

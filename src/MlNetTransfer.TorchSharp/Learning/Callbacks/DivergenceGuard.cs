using MlNetTransfer.Progress;
using MlNetTransfer.Training;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>
/// An epoch whose training or validation loss is not a finite number has wrecked the weights: it is shown but never
/// kept, its phase stops there (the next phase starts from the best epoch so far), and when no epoch is kept yet the
/// run fails with what to change. (Without validation images its loss and accuracy are both NaN; that is not divergence.)
/// </summary>
internal sealed class DivergenceGuard(double learningRate, BestEpochKeeper keeper, IProgress<ProgressEvent>? progress) : Callback
{
    public override void AfterEpoch(FitContext context)
    {
        var record = context.Record!;
        bool diverged = !double.IsFinite(record.TrainLoss) || double.IsInfinity(record.ValidationLoss) ||
                        (double.IsNaN(record.ValidationLoss) && !double.IsNaN(record.ValidationAccuracy));
        if (!diverged)
            return;
        context.Dropped = true;
        context.StopPhase = true;
        string what = FormattableString.Invariant(
            $"training diverged in {record.Phase} epoch {record.Epoch} (training loss {record.TrainLoss:G4}, validation loss {record.ValidationLoss:G4}) at learning rate {learningRate:G3}");
        const string advice = "lower FineTuning.LearningRate (or FineTuning.BlockLearningRateFactor for the unfrozen block), or pick a rate with the learning-rate range test";
        if (keeper.Best is null)
            throw new TrainingDivergedException($"{what} before any epoch could be kept, so there is no model to save: {advice}.");
        progress.Note($"{what}: this phase stops here and its weights are dropped; {advice}", warning: true);
    }
}

using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>Adds every epoch to the run's history and reports it (fastai's per-epoch row), the phase as a stage.</summary>
internal sealed class EpochReporter(List<EpochRecord> history, string description, IProgress<ProgressEvent>? progress) : Callback
{
    public override void BeforeFit(FitContext context) =>
        progress?.Report(new StageStarted(context.Phase.Name, description, context.Phase.Epochs));

    public override void AfterEpoch(FitContext context)
    {
        var record = context.Record!;
        history.Add(record);
        progress?.Report(new StageAdvanced(record.Phase, record.Epoch, context.Phase.Epochs));
        progress?.Report(new EpochFinished(record.Phase, record.Epoch, context.Phase.Epochs, record.TrainLoss, record.TrainAccuracy, record.ValidationLoss,
            record.ValidationAccuracy, record.LearningRate, record.Elapsed, context.IsBest));
    }

    public override void AfterFit(FitContext context) =>
        progress?.Report(new StageFinished(context.Phase.Name, context.Phase.Epochs,
            TimeSpan.FromTicks(history.Where(h => h.Phase == context.Phase.Name).Sum(h => h.Elapsed.Ticks))));
}

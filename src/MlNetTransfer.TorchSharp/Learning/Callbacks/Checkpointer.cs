using MlNetTransfer.Training.Backends;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>
/// Saves the run's state after every kept epoch (weights, optimizer, best epoch, history, schedule position, early
/// stopping), so a run killed at any point resumes from its last whole epoch to exactly the weights of an
/// uninterrupted one. Runs after the callbacks whose state it saves. <c>headEpoch</c> gives the head epoch fine-tuning
/// starts (or started) from, so that a resumed run's refit starts from the same one.
/// </summary>
internal sealed class Checkpointer(TrainingCheckpoint checkpoint, string fingerprint, nn.Module? suffix, nn.Module head, BestEpochKeeper keeper,
    List<EpochRecord> history, EarlyStopping? stopping, Func<int?> headEpoch) : Callback
{
    public override void AfterEpoch(FitContext context)
    {
        if (context.Dropped)
            return;
        bool done = context.StopPhase || context.Epoch == context.Phase.Epochs;
        checkpoint.Save(new CheckpointState
        {
            Fingerprint = fingerprint,
            Phase = context.Phase.Name,
            Epoch = context.Epoch,
            Step = context.Step,
            BestLoss = stopping?.BestLoss ?? double.MaxValue,
            SinceBetterLoss = stopping?.SinceBetter ?? 0,
            PhaseDone = done,
            HeadEpoch = headEpoch(),
            History = history.ToList(),
            Best = keeper.Best,
        }, suffix, head, context.Phase.Optimizer, keeper.SuffixSnapshot, keeper.HeadSnapshot);
    }
}

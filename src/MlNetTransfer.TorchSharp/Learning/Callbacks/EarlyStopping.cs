using MlNetTransfer.Progress;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>Stops the phase after <paramref name="patience"/> epochs without a better validation loss.</summary>
internal sealed class EarlyStopping(int patience, IProgress<ProgressEvent>? progress) : Callback
{
    /// <summary>The best validation loss of the phase so far (checkpointed).</summary>
    public double BestLoss { get; set; } = double.MaxValue;

    /// <summary>Epochs since it improved (checkpointed).</summary>
    public int SinceBetter { get; set; }

    public override void AfterEpoch(FitContext context)
    {
        double loss = context.Record!.ValidationLoss;
        // Without validation images (a refit stops at its epoch instead) there is nothing to stop on.
        if (context.Dropped || double.IsNaN(loss))
            return;
        if (loss < BestLoss - 1e-6)
        {
            BestLoss = loss;
            SinceBetter = 0;
        }
        else if (++SinceBetter >= patience)
        {
            progress.Note($"early stop: validation loss has not improved for {patience} epochs");
            context.StopPhase = true;
        }
    }
}

/// <summary>A refit ends at the epoch chosen before: later epochs would not be kept.</summary>
internal sealed class StopAtEpoch(int epoch) : Callback
{
    public override void AfterEpoch(FitContext context)
    {
        if (context.Epoch >= epoch)
            context.StopPhase = true;
    }
}

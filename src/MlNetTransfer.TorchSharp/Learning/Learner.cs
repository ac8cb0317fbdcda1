using System.Diagnostics;
using MlNetTransfer.Training.Backends;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Learning;

/// <summary>A mini-batch: inputs, integer labels, and how many samples it holds.</summary>
internal readonly record struct Batch(Tensor X, Tensor Y, int Count);

/// <summary>
/// One phase of training (fastai's fit of a frozen or unfrozen learner): what it trains, on which batches, with which
/// optimizer, how an epoch is validated, and where it starts when resumed.
/// </summary>
internal sealed class TrainingPhase
{
    /// <summary>"head" (the head on the frozen base) or "fine-tune" (block + head); also names each epoch's random stream.</summary>
    public required string Name { get; init; }

    public required int Epochs { get; init; }

    /// <summary>First epoch to run (1, or the one after a checkpoint's).</summary>
    public int FirstEpoch { get; init; } = 1;

    /// <summary>Optimizer steps already taken (a resumed phase continues its schedule there).</summary>
    public int FirstStep { get; init; }

    /// <summary>The epoch's batches, drawn from its random stream; created inside the batch's dispose scope.</summary>
    public required Func<Random, IEnumerable<Batch>> Batches { get; init; }

    /// <summary>Batches per epoch (for schedules).</summary>
    public required int StepsPerEpoch { get; init; }

    /// <summary>Logits of a batch.</summary>
    public required Func<Tensor, Tensor> Forward { get; init; }

    /// <summary>What switches between training and inference mode.</summary>
    public required IReadOnlyList<nn.Module> Modules { get; init; }

    public required optim.Optimizer Optimizer { get; init; }

    /// <summary>Validation loss and accuracy of the current weights (NaN, NaN without validation images).</summary>
    public required Func<(double Loss, double Accuracy)> Validate { get; init; }

    /// <summary>Label smoothing of the training loss (0: none); validation losses are never smoothed.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>The rate an epoch reports: the last parameter group's.</summary>
    public double ReportedRate => Optimizer.ParamGroups.Last().LearningRate;
}

/// <summary>Where a fit stands, for the callbacks: they read it and set its flags.</summary>
internal sealed class FitContext(TrainingPhase phase)
{
    public TrainingPhase Phase { get; } = phase;

    public int Epoch { get; set; }

    /// <summary>Optimizer steps taken in this phase (the schedule's position).</summary>
    public int Step { get; set; }

    /// <summary>The epoch just finished (set before <see cref="Callback.AfterEpoch"/>).</summary>
    public EpochRecord? Record { get; set; }

    /// <summary>This epoch's weights are wrecked (non-finite loss): shown, never kept or checkpointed.</summary>
    public bool Dropped { get; set; }

    /// <summary>This epoch's weights are now the best kept.</summary>
    public bool IsBest { get; set; }

    /// <summary>No further epoch of this phase runs.</summary>
    public bool StopPhase { get; set; }

    /// <summary>Stop between batches: this epoch is neither validated nor handed to <see cref="Callback.AfterEpoch"/> (the range test).</summary>
    public bool StopNow { get; set; }

    /// <summary>The user stopped the run between batches; the half epoch is neither reported nor kept.</summary>
    public bool Cancelled { get; set; }
}

/// <summary>A small piece of behaviour hooked into the one fit loop (fastai's callbacks).</summary>
internal abstract class Callback
{
    public virtual void BeforeFit(FitContext context) { }

    public virtual void BeforeBatch(FitContext context) { }

    public virtual void AfterBatch(FitContext context, double loss) { }

    public virtual void AfterEpoch(FitContext context) { }

    public virtual void AfterFit(FitContext context) { }
}

/// <summary>
/// The one fit loop, shared by the head phase, fine-tuning, the refit, continued training and the learning-rate range
/// test: per epoch, seed its random stream, run its batches (forward, cross-entropy, backward, step), validate, and
/// hand the epoch to the callbacks, which schedule rates, keep the best weights, stop early, guard against
/// divergence, checkpoint and report. The loop itself never grows; new behaviour is a callback.
/// </summary>
internal static class Learner
{
    /// <returns>The context at the end (whether the user stopped it, the last epoch).</returns>
    public static FitContext Fit(TrainingPhase phase, int seed, IReadOnlyList<Callback> callbacks, CancellationToken cancellationToken)
    {
        var context = new FitContext(phase) { Step = phase.FirstStep };
        foreach (var c in callbacks) c.BeforeFit(context);
        for (int epoch = phase.FirstEpoch; epoch <= phase.Epochs && !context.StopPhase; epoch++)
        {
            context.Epoch = epoch;
            var clock = Stopwatch.StartNew();
            var random = EpochRandom(seed, phase.Name, epoch);
            foreach (var m in phase.Modules) m.train();
            double lossSum = 0;
            long correct = 0, samples = 0;
            using (var batches = phase.Batches(random).GetEnumerator())
            {
                while (true)
                {
                    if (cancellationToken.IsCancellationRequested) { context.Cancelled = true; break; }
                    using var scope = NewDisposeScope();
                    if (!batches.MoveNext())
                        break;
                    var batch = batches.Current;
                    foreach (var c in callbacks) c.BeforeBatch(context);
                    phase.Optimizer.zero_grad();
                    var logits = phase.Forward(batch.X);
                    var loss = nn.functional.cross_entropy(logits, batch.Y, label_smoothing: phase.LabelSmoothing);
                    loss.backward();
                    phase.Optimizer.step();
                    context.Step++;
                    double value = loss.item<float>();
                    lossSum += value * batch.Count;
                    correct += logits.argmax(1).eq(batch.Y).sum().item<long>();
                    samples += batch.Count;
                    foreach (var c in callbacks) c.AfterBatch(context, value);
                    if (context.StopNow)
                        break;
                }
            }
            // No batch at all (no training image) is nothing to fit.
            if (context.Cancelled || context.StopNow || samples == 0)
                break;
            foreach (var m in phase.Modules) m.eval();
            var (valLoss, valAccuracy) = phase.Validate();
            context.Record = new EpochRecord(phase.Name, epoch, lossSum / Math.Max(1, samples), correct / (double)Math.Max(1, samples), valLoss, valAccuracy,
                phase.ReportedRate, clock.Elapsed);
            context.Dropped = context.IsBest = false;
            foreach (var c in callbacks) c.AfterEpoch(context);
        }
        foreach (var c in callbacks) c.AfterFit(context);
        return context;
    }

    /// <summary>Each epoch draws from its own seeded stream (batch order, views, dropout), so a resumed run repeats it exactly.</summary>
    public static Random EpochRandom(int seed, string phase, int epoch)
    {
        // A fixed mix of seed, phase and epoch (string and HashCode hashes are randomized per process).
        int epochSeed = unchecked((int)(((uint)seed * 2654435761u) ^ ((phase == "head" ? 1u : 2u) * 2654435769u) ^ ((uint)epoch * 2246822519u)) & 0x7fffffff);
        torch.manual_seed(epochSeed);
        return new Random(epochSeed);
    }
}

using MlNetTransfer.Training;
using TorchSharp;

namespace MlNetTransfer.TorchSharp.Learning.Callbacks;

/// <summary>
/// Sets every parameter group's rate before each batch: its initial rate times the schedule's factor at this step of
/// <paramref name="steps"/>, cosine from 1 to ~0, or one-cycle (warm up from 1/25 over the first quarter, then cosine).
/// </summary>
internal sealed class LearningRateScheduler(LearningRateSchedule schedule, int steps) : Callback
{
    public override void BeforeBatch(FitContext context) => Apply(context.Phase.Optimizer, Factor(context.Step));

    public double Factor(int step)
    {
        double t = steps <= 1 ? 1 : step / (double)(steps - 1);
        if (schedule == LearningRateSchedule.OneCycle)
        {
            const double warm = 0.25;
            return t < warm
                ? 1.0 / 25 + (1 - 1.0 / 25) * (t / warm)
                : 1e-4 + (1 - 1e-4) * 0.5 * (1 + Math.Cos(Math.PI * (t - warm) / (1 - warm)));
        }
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }

    private static void Apply(torch.optim.Optimizer optimizer, double factor)
    {
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = group.InitialLearningRate * factor;
    }
}

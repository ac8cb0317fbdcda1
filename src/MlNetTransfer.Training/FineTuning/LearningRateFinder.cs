using MlNetTransfer.Progress;
using MlNetTransfer.Training.Heads;
using MlNetTransfer.Training.OnnxImport;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Training.FineTuning;

/// <summary>One step of the sweep: the learning rate, the batch loss and its smoothed value.</summary>
public sealed record LearningRatePoint(double LearningRate, double Loss, double SmoothedLoss);

/// <summary>The sweep and the rate it suggests (steepest descent of the smoothed loss).</summary>
public sealed record LearningRateSweep(IReadOnlyList<LearningRatePoint> Points, double Suggested, double MinimumLossRate, bool Diverged);

/// <summary>
/// fastai's learning-rate range test: train on mini-batches while the learning rate grows exponentially from
/// <c>start</c> to <c>end</c>, smooth the loss (exponential average, bias-corrected), stop once it diverges (4x its
/// minimum), and suggest the rate where the smoothed loss falls fastest. Runs the same model and optimizer as training:
/// the head on the frozen base, or, with a suffix, the unfrozen block(s) + head (block at lr x the block factor).
/// </summary>
public static class LearningRateFinder
{
    public static LearningRateSweep Run(ModelProto composed, string boundary, string featuresTensor, int featureLength, BoundaryCache train,
        IReadOnlyList<string> classes, FineTuneOptions options, bool fineTune, int seed, double start = 1e-6, double end = 10, int steps = 100,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        torch.manual_seed(seed);
        torch.set_num_threads(Math.Max(1, options.Threads ?? Environment.ProcessorCount));
        var random = new Random(seed);
        var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => (long)p.i);
        bool tuneBlock = fineTune && boundary != featuresTensor;
        using var suffix = boundary == featuresTensor ? null
            : new OnnxGraphModule(composed, boundary, featuresTensor,
                tuneBlock ? OnnxGraphModule.TrainableInitializers(composed, boundary, featuresTensor) : new HashSet<string>(), options.TrainBatchNorm);
        using var head = new ClassifierHead(options.Head, featureLength, classes.Count);

        // The head alone trains on pooled features of every view, computed once; a block trains on the cached activations.
        Tensor? pooledX = null, pooledY = null;
        if (!tuneBlock)
            (pooledX, pooledY) = FineTuner.PooledViews(suffix, train, classIndex);
        var groups = new List<(IEnumerable<TorchSharp.Modules.Parameter>, double)> { (head.parameters(), start) };
        if (tuneBlock)
            groups.Insert(0, (suffix!.parameters().Where(p => p.requires_grad).ToList(), start * options.BlockLearningRateFactor));
        using var optimizer = FineTuner.MakeOptimizer(options, groups);
        var factors = optimizer.ParamGroups.Select(g => g.LearningRate / start).ToArray();

        var points = new List<LearningRatePoint>();
        double average = 0, best = double.MaxValue;
        bool diverged = false;
        var labels = train.Images.Select(i => classIndex[i.Image.Label]).ToArray();
        suffix?.train();
        head.train();
        progress?.Report(new StageStarted("lr-find", $"Learning-rate range test, {start:0e0} to {end:0e0}", steps));
        for (int step = 0; step < steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            double lr = start * Math.Pow(end / start, step / (double)(steps - 1));
            int g = 0;
            foreach (var group in optimizer.ParamGroups)
                group.LearningRate = lr * factors[g++];
            Tensor logits, y;
            if (pooledX is not null)
            {
                var index = tensor(Enumerable.Range(0, options.BatchSize).Select(_ => (long)random.Next((int)pooledX.shape[0])).ToArray());
                logits = head.forward(pooledX.index_select(0, index));
                y = pooledY!.index_select(0, index);
            }
            else
            {
                var members = Enumerable.Range(0, options.BatchSize).Select(_ => random.Next(train.Images.Count)).ToList();
                var x = FineTuner.Activations(train, members.Select(m => (m, random.Next(1 + train.Images[m].Augmented.Length))).ToList());
                logits = head.forward(suffix!.forward(x));
                y = tensor(members.Select(m => labels[m]).ToArray());
            }
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(logits, y);
            loss.backward();
            optimizer.step();
            double value = loss.item<float>();
            average = 0.98 * average + 0.02 * value;
            double smoothed = average / (1 - Math.Pow(0.98, step + 1));
            points.Add(new LearningRatePoint(lr, value, smoothed));
            progress?.Report(new StageAdvanced("lr-find", step + 1, steps));
            best = Math.Min(best, smoothed);
            if (double.IsNaN(smoothed) || smoothed > 4 * best)
            {
                diverged = true;
                break;
            }
        }
        progress?.Report(new StageFinished("lr-find", points.Count, TimeSpan.Zero));
        pooledX?.Dispose();
        pooledY?.Dispose();
        return new LearningRateSweep(points, Suggest(points), points.MinBy(p => p.SmoothedLoss)!.LearningRate, diverged);
    }

    /// <summary>The rate where the smoothed loss falls fastest against log(lr), before its minimum (fastai's "steep").</summary>
    public static double Suggest(IReadOnlyList<LearningRatePoint> points)
    {
        int minimum = points.Select((p, i) => (p, i)).MinBy(t => t.p.SmoothedLoss).i;
        // Skip the first steps: the smoothed loss is still settling there.
        int first = Math.Min(points.Count / 10, Math.Max(0, minimum - 1));
        double steepest = double.MaxValue;
        double suggestion = points[Math.Max(0, minimum)].LearningRate / 10;
        for (int i = Math.Max(1, first); i <= minimum; i++)
        {
            double slope = (points[i].SmoothedLoss - points[i - 1].SmoothedLoss) / (Math.Log(points[i].LearningRate) - Math.Log(points[i - 1].LearningRate));
            if (slope < steepest)
            {
                steepest = slope;
                suggestion = points[i].LearningRate;
            }
        }
        return suggestion;
    }
}

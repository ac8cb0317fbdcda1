using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Heads;
using MlNetTransfer.Training.OnnxImport;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Training.FineTuning;

/// <summary>One epoch of training, as reported.</summary>
public sealed record EpochRecord(string Phase, int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double LearningRate, TimeSpan Elapsed);

/// <summary>Initial weights from a saved model (continued training).</summary>
/// <param name="OutputWeights">Softmax layer, [classes][inputs].</param>
/// <param name="OutputBiases">Softmax layer biases.</param>
/// <param name="HiddenWeights">MLP hidden layer [units * inputs], row-major; null for a linear head.</param>
/// <param name="HiddenBiases">MLP hidden layer biases.</param>
public sealed record HeadWeights(float[][] OutputWeights, float[] OutputBiases, float[]? HiddenWeights = null, float[]? HiddenBiases = null);

/// <summary>The trained suffix (null when only the head trained) and head, with the history and the best epoch's validation probabilities.</summary>
public sealed class FineTuneResult(OnnxGraphModule? suffix, ClassifierHead head, IReadOnlyList<EpochRecord> history, EpochRecord? best, float[][] validationProbabilities, bool stopped) : IDisposable
{
    public OnnxGraphModule? Suffix { get; } = suffix;
    public ClassifierHead Head { get; } = head;
    public IReadOnlyList<EpochRecord> History { get; } = history;

    /// <summary>The epoch whose weights were kept.</summary>
    public EpochRecord? Best { get; } = best;

    /// <summary>Softmax of the kept weights on each validation image, in the order of the validation cache.</summary>
    public float[][] ValidationProbabilities { get; } = validationProbabilities;

    /// <summary>True when training was stopped early by the user; the weights are the best so far.</summary>
    public bool Stopped { get; } = stopped;

    public void Dispose()
    {
        Suffix?.Dispose();
        Head.Dispose();
    }
}

/// <summary>
/// The TorchSharp training loop on cached freeze-boundary activations: phase 1 trains the head on the frozen base
/// (every cached view is a sample), phase 2 trains the unfrozen suffix and the head together (each epoch sees every
/// image once, in a random one of its views), with discriminative learning rates, a one-cycle or cosine schedule,
/// early stopping on validation loss, and the best validation epoch kept (accuracy, then loss), the head-only state
/// included. Same seed, data and threads: bit-identical weights.
/// </summary>
public sealed class FineTuner(FineTuneOptions options, int seed)
{
    private const int EvalBatch = 64;

    /// <param name="composed">The composed featurizer graph.</param>
    /// <param name="boundary">The freeze boundary (the cache's tensor); <paramref name="featuresTensor"/> for a head on the frozen base.</param>
    /// <param name="featuresTensor">The graph's feature output.</param>
    /// <param name="featureLength">Length of the features.</param>
    /// <param name="train">Cached training views.</param>
    /// <param name="validation">Cached validation images (may be empty: then no epoch is chosen on it).</param>
    /// <param name="classes">Class names, in score order.</param>
    /// <param name="warmStart">Head weights to start from (continued training); skips the head phase.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="cancellationToken">Stops after the current batch; the best epoch so far is kept.</param>
    /// <param name="keepEpoch">Keep this epoch instead of the best validation one (a refit).</param>
    /// <param name="checkpoint">Where to save the state after every epoch.</param>
    /// <param name="resume">Continue from <paramref name="checkpoint"/> if it holds this run's state.</param>
    public FineTuneResult Train(ModelProto composed, string boundary, string featuresTensor, int featureLength,
        BoundaryCache train, BoundaryCache validation, IReadOnlyList<string> classes, HeadWeights? warmStart = null,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default, (string Phase, int Epoch)? keepEpoch = null,
        TrainingCheckpoint? checkpoint = null, bool resume = false)
    {
        torch.manual_seed(seed);
        torch.set_num_threads(Math.Max(1, options.Threads ?? Environment.ProcessorCount));
        var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => (long)p.i);
        bool fineTune = options.Epochs > 0 && boundary != featuresTensor;

        var suffix = boundary == featuresTensor ? null
            : new OnnxGraphModule(composed, boundary, featuresTensor,
                fineTune ? OnnxGraphModule.TrainableInitializers(composed, boundary, featuresTensor) : new HashSet<string>(), options.TrainBatchNorm);
        var head = new ClassifierHead(options.Head, featureLength, classes.Count);
        if (warmStart is not null)
        {
            head.SetOutput(warmStart.OutputWeights, warmStart.OutputBiases);
            if (warmStart.HiddenWeights is not null)
                head.SetHidden(warmStart.HiddenWeights, warmStart.HiddenBiases!);
        }

        var history = new List<EpochRecord>();
        var valLabels = validation.Images.Select(i => classIndex[i.Image.Label]).ToArray();
        // A refit on all the data keeps a given epoch (chosen on held-out data before); otherwise the best validation epoch.
        var tracker = new BestTracker(suffix, head, keepEpoch);
        bool stopped = false;
        int headEpochs = warmStart is null ? options.HeadEpochs : 0;

        // Continue where a killed run left off: weights, optimizer state, best epoch, history, schedule position.
        var fingerprint = Fingerprint(boundary, featuresTensor, featureLength, train, validation, classes, warmStart is not null, keepEpoch);
        var state = resume ? checkpoint?.ReadState(fingerprint) : null;
        byte[] optimizerState = [];
        if (state is not null)
        {
            optimizerState = checkpoint!.Restore(suffix, head, out var bestSuffix, out var bestHead);
            tracker.Load(state.Best, bestSuffix, bestHead);
            history.AddRange(state.History);
            progress.Note($"resuming from {checkpoint.Path}: {state.Phase} epoch {state.Epoch} done");
        }
        else if (resume)
        {
            progress.Note("no checkpoint to resume from: starting from the beginning");
        }
        void Checkpoint(string phase, int epoch, int step, double bestLoss, int sinceBetter, bool done, optim.Optimizer optimizer) =>
            checkpoint?.Save(new CheckpointState
            {
                Fingerprint = fingerprint, Phase = phase, Epoch = epoch, Step = step, BestLoss = bestLoss, SinceBetterLoss = sinceBetter, Done = done,
                History = history.ToList(), Best = tracker.Best,
            }, suffix, head, optimizer, tracker.SuffixSnapshot, tracker.HeadSnapshot);

        // Phase 1: the head alone, on pooled features of every cached view (the suffix is frozen here).
        int firstHeadEpoch = state switch { null => 1, { Phase: "head" } => state.Epoch + 1, _ => headEpochs + 1 };
        if (headEpochs > 0 && firstHeadEpoch <= headEpochs)
        {
            using var scope = NewDisposeScope();
            var (trainX, trainY) = PooledViews(suffix, train, classIndex);
            var (valX, _) = PooledViews(suffix, validation, classIndex, plainOnly: true);
            var valY = tensor(valLabels);
            using var optimizer = MakeOptimizer([(head.parameters(), options.LearningRate)]);
            TrainingCheckpoint.LoadOptimizer(optimizer, state?.Phase == "head" ? optimizerState : []);
            long samples = trainX.shape[0];
            int steps = (int)Math.Ceiling(samples / (double)options.BatchSize) * headEpochs, step = state?.Phase == "head" ? state.Step : 0;
            progress?.Report(new StageStarted("head", $"Training the {options.Head.ToString().ToLowerInvariant()} head on the frozen base", headEpochs));
            for (int epoch = firstHeadEpoch; epoch <= headEpochs && !stopped; epoch++)
            {
                var clock = Stopwatch.StartNew();
                var random = EpochRandom("head", epoch);
                head.train();
                double lossSum = 0;
                long correct = 0;
                var order = Permutation(random, (int)samples);
                for (int start = 0; start < samples; start += options.BatchSize)
                {
                    if (cancellationToken.IsCancellationRequested) { stopped = true; break; }
                    using var batchScope = NewDisposeScope();
                    var index = tensor(order.AsSpan(start, (int)Math.Min(options.BatchSize, samples - start)).ToArray());
                    SetLearningRates(optimizer, step++, steps);
                    optimizer.zero_grad();
                    var logits = head.forward(trainX.index_select(0, index));
                    var targets = trainY.index_select(0, index);
                    var loss = nn.functional.cross_entropy(logits, targets);
                    loss.backward();
                    optimizer.step();
                    lossSum += loss.item<float>() * index.shape[0];
                    correct += logits.argmax(1).eq(targets).sum().item<long>();
                }
                if (stopped) break; // a half epoch is neither reported nor kept
                head.eval();
                var (valLoss, valAccuracy) = Evaluate(() => head.forward(valX), valY);
                var record = new EpochRecord("head", epoch, lossSum / samples, correct / (double)samples, valLoss, valAccuracy, optimizer.ParamGroups.First().LearningRate, clock.Elapsed);
                if (Diverged(record, headEpochs, options.LearningRate, tracker, history, progress))
                    break;
                Report(record, headEpochs, tracker.Offer(record), history, progress);
                Checkpoint("head", epoch, step, double.MaxValue, 0, done: epoch == headEpochs && !fineTune, optimizer);
            }
            progress?.Report(new StageFinished("head", headEpochs, TimeSpan.FromTicks(history.Sum(h => h.Elapsed.Ticks))));
        }

        // Phase 2: the unfrozen suffix and the head, each image once per epoch in a random one of its views.
        if (fineTune && !stopped && keepEpoch?.Phase != "head" && state is not { Phase: "fine-tune", Done: true })
        {
            bool continuing = state?.Phase == "fine-tune";
            if (!continuing)
                tracker.Restore(); // start from the best head
            var blockParameters = suffix!.parameters().Where(p => p.requires_grad).ToList();
            using var optimizer = MakeOptimizer([(blockParameters, options.LearningRate * options.BlockLearningRateFactor),
                (head.parameters(), options.LearningRate * options.FineTuneHeadFactor)]);
            TrainingCheckpoint.LoadOptimizer(optimizer, continuing ? optimizerState : []);
            int n = train.Images.Count, stepsPerEpoch = (int)Math.Ceiling(n / (double)options.BatchSize);
            int steps = stepsPerEpoch * options.Epochs, step = continuing ? state!.Step : 0, sinceBetterLoss = continuing ? state!.SinceBetterLoss : 0;
            double bestLoss = continuing ? state!.BestLoss : double.MaxValue;
            var trainLabels = train.Images.Select(i => classIndex[i.Image.Label]).ToArray();
            progress?.Report(new StageStarted("fine-tune", $"Fine-tuning {boundary} -> top with the head", options.Epochs));
            for (int epoch = continuing ? state!.Epoch + 1 : 1; epoch <= options.Epochs; epoch++)
            {
                var clock = Stopwatch.StartNew();
                var random = EpochRandom("fine-tune", epoch);
                suffix.train();
                head.train();
                double lossSum = 0;
                long correct = 0;
                var order = Permutation(random, n);
                for (int start = 0; start < n; start += options.BatchSize)
                {
                    if (cancellationToken.IsCancellationRequested) { stopped = true; break; }
                    using var batchScope = NewDisposeScope();
                    var members = order.AsSpan(start, Math.Min(options.BatchSize, n - start)).ToArray();
                    var x = Activations(train, members.Select(m => ((int)m, PickView(train.Images[(int)m], random))).ToList());
                    var y = tensor(members.Select(m => trainLabels[m]).ToArray());
                    SetLearningRates(optimizer, step++, steps);
                    optimizer.zero_grad();
                    var logits = head.forward(suffix.forward(x));
                    var loss = nn.functional.cross_entropy(logits, y);
                    loss.backward();
                    optimizer.step();
                    lossSum += loss.item<float>() * members.Length;
                    correct += logits.argmax(1).eq(y).sum().item<long>();
                }
                if (stopped) break;
                var (valLoss, valAccuracy) = EvaluateSuffix(suffix, head, validation, valLabels);
                var record = new EpochRecord("fine-tune", epoch, lossSum / n, correct / (double)n, valLoss, valAccuracy, optimizer.ParamGroups.Last().LearningRate, clock.Elapsed);
                if (Diverged(record, options.Epochs, options.LearningRate * options.BlockLearningRateFactor, tracker, history, progress))
                    break;
                Report(record, options.Epochs, tracker.Offer(record), history, progress);
                bool done = epoch == options.Epochs;
                if (keepEpoch is { } keep)
                    done |= epoch >= keep.Epoch;
                else if (valLoss < bestLoss - 1e-6) { bestLoss = valLoss; sinceBetterLoss = 0; }
                else if (++sinceBetterLoss >= options.Patience)
                {
                    progress.Note($"early stop: validation loss has not improved for {options.Patience} epochs");
                    done = true;
                }
                Checkpoint("fine-tune", epoch, step, bestLoss, sinceBetterLoss, done, optimizer);
                if (done) break;
            }
            progress?.Report(new StageFinished("fine-tune", options.Epochs, TimeSpan.FromTicks(history.Where(h => h.Phase == "fine-tune").Sum(h => h.Elapsed.Ticks))));
        }

        tracker.Restore();
        if (tracker.Best is { } kept)
            progress.Note(keepEpoch is null
                ? FormattableString.Invariant($"kept the best epoch: {kept.Phase} {kept.Epoch} (validation accuracy {kept.ValidationAccuracy:F4}, loss {kept.ValidationLoss:F4})")
                : $"kept {kept.Phase} epoch {kept.Epoch}, as chosen before");
        var probabilities = Probabilities(suffix, head, validation);
        tracker.Dispose();
        return new FineTuneResult(suffix, head, history, tracker.Best, probabilities, stopped);
    }

    /// <summary>
    /// An epoch whose training or validation loss is not a finite number has wrecked the weights: it is shown but never
    /// kept, its phase stops there (the next phase starts from the best epoch so far), and when no epoch is kept yet the
    /// run fails with what to change. (Without validation data its loss and accuracy are both NaN; that is not divergence.)
    /// </summary>
    private static bool Diverged(EpochRecord record, int epochs, double learningRate, BestTracker tracker, List<EpochRecord> history, IProgress<ProgressEvent>? progress)
    {
        if (!IsDiverged(record))
            return false;
        Report(record, epochs, isBest: false, history, progress);
        string what = FormattableString.Invariant(
            $"training diverged in {record.Phase} epoch {record.Epoch} (training loss {record.TrainLoss:G4}, validation loss {record.ValidationLoss:G4}) at learning rate {learningRate:G3}");
        const string advice = "lower --lr (or --block-lr-factor for the unfrozen block), or pick a rate with lr-find";
        if (tracker.Best is null)
            throw new TrainingDivergedException($"{what} before any epoch could be kept, so there is no model to save: {advice}.");
        progress.Note($"{what}: this phase stops here and its weights are dropped; {advice}", warning: true);
        return true;
    }

    private static bool IsDiverged(EpochRecord record) =>
        !double.IsFinite(record.TrainLoss) || double.IsInfinity(record.ValidationLoss) ||
        (double.IsNaN(record.ValidationLoss) && !double.IsNaN(record.ValidationAccuracy));

    /// <summary>Each epoch draws from its own seeded stream (batch order, views, dropout), so a resumed run repeats it exactly.</summary>
    private Random EpochRandom(string phase, int epoch)
    {
        // A fixed mix of seed, phase and epoch (string and HashCode hashes are randomized per process).
        int epochSeed = unchecked((int)(((uint)seed * 2654435761u) ^ ((phase == "head" ? 1u : 2u) * 2654435769u) ^ ((uint)epoch * 2246822519u)) & 0x7fffffff);
        torch.manual_seed(epochSeed);
        return new Random(epochSeed);
    }

    private string Fingerprint(string boundary, string featuresTensor, int featureLength, BoundaryCache train, BoundaryCache validation,
        IReadOnlyList<string> classes, bool warm, (string Phase, int Epoch)? keep)
    {
        var text = new StringBuilder()
            .Append(seed).Append('|').Append(options).Append('|').Append(boundary).Append('|').Append(featuresTensor).Append('|').Append(featureLength)
            .Append('|').AppendJoin(",", classes).Append('|').Append(warm).Append('|').Append(keep)
            .Append('|').AppendJoin(";", train.Images.Select(i => $"{i.Image.Path}:{i.Image.Label}:{i.Augmented.Length}"))
            .Append('|').AppendJoin(";", validation.Images.Select(i => $"{i.Image.Path}:{i.Image.Label}"));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static void Report(EpochRecord record, int epochs, bool isBest, List<EpochRecord> history, IProgress<ProgressEvent>? progress)
    {
        history.Add(record);
        progress?.Report(new StageAdvanced(record.Phase, record.Epoch, epochs));
        progress?.Report(new EpochFinished(record.Phase, record.Epoch, epochs, record.TrainLoss, record.TrainAccuracy, record.ValidationLoss, record.ValidationAccuracy,
            record.LearningRate, record.Elapsed, isBest));
    }

    private static int PickView(CachedImage image, Random random) => random.Next(1 + image.Augmented.Length);

    private static long[] Permutation(Random random, int n)
    {
        var order = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        random.Shuffle(order);
        return order;
    }

    /// <summary>A batch [n, C, H, W] from cached views (view 0 = plain).</summary>
    internal static Tensor Activations(BoundaryCache cache, IReadOnlyList<(int Image, int View)> items)
    {
        int length = cache.ActivationLength;
        var data = new float[items.Count * length];
        for (int i = 0; i < items.Count; i++)
        {
            var image = cache.Images[items[i].Image];
            (items[i].View == 0 ? image.Plain : image.Augmented[items[i].View - 1]).CopyTo(data, i * length);
        }
        return tensor(data, [items.Count, .. cache.ActivationShape.Select(d => (long)d)]);
    }

    /// <summary>Pooled features of every view (or only the plain ones), through the frozen suffix, and their labels.</summary>
    internal static (Tensor X, Tensor Y) PooledViews(OnnxGraphModule? suffix, BoundaryCache cache, Dictionary<string, long> classIndex, bool plainOnly = false)
    {
        var items = cache.Images.SelectMany((image, i) => Enumerable.Range(0, plainOnly ? 1 : 1 + image.Augmented.Length).Select(v => (i, v))).ToList();
        var labels = tensor(items.Select(it => classIndex[cache.Images[it.i].Image.Label]).ToArray());
        if (items.Count == 0)
            return (empty(0), labels);
        var parts = new List<Tensor>();
        suffix?.eval();
        using (no_grad())
        {
            for (int start = 0; start < items.Count; start += EvalBatch)
            {
                var x = Activations(cache, items.Skip(start).Take(EvalBatch).ToList());
                parts.Add(suffix is null ? x.reshape(x.shape[0], -1) : suffix.forward(x));
            }
        }
        return (cat(parts, 0), labels);
    }

    private static (double Loss, double Accuracy) Evaluate(Func<Tensor> logits, Tensor labels)
    {
        if (labels.shape[0] == 0)
            return (double.NaN, double.NaN);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var z = logits();
        double loss = nn.functional.cross_entropy(z, labels).item<float>();
        double accuracy = z.argmax(1).eq(labels).to_type(ScalarType.Float64).mean().item<double>();
        return (loss, accuracy);
    }

    private static (double Loss, double Accuracy) EvaluateSuffix(OnnxGraphModule suffix, ClassifierHead head, BoundaryCache validation, long[] labels)
    {
        if (labels.Length == 0)
            return (double.NaN, double.NaN);
        suffix.eval();
        head.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var logits = cat(Batches(validation).Select(x => head.forward(suffix.forward(x))).ToList(), 0);
        var y = tensor(labels);
        return (nn.functional.cross_entropy(logits, y).item<float>(), logits.argmax(1).eq(y).to_type(ScalarType.Float64).mean().item<double>());
    }

    private static IEnumerable<Tensor> Batches(BoundaryCache cache)
    {
        for (int start = 0; start < cache.Images.Count; start += EvalBatch)
            yield return Activations(cache, Enumerable.Range(start, Math.Min(EvalBatch, cache.Images.Count - start)).Select(i => (i, 0)).ToList());
    }

    /// <summary>Softmax of the current weights on the plain view of each image.</summary>
    public static float[][] Probabilities(OnnxGraphModule? suffix, ClassifierHead head, BoundaryCache cache)
    {
        suffix?.eval();
        head.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var rows = new List<float[]>();
        foreach (var x in Batches(cache))
        {
            var features = suffix is null ? x.reshape(x.shape[0], -1) : suffix.forward(x);
            var p = nn.functional.softmax(head.forward(features), 1).contiguous();
            var flat = p.data<float>().ToArray();
            int k = (int)p.shape[1];
            for (int i = 0; i < p.shape[0]; i++)
                rows.Add(flat.AsSpan(i * k, k).ToArray());
        }
        return rows.ToArray();
    }

    private optim.Optimizer MakeOptimizer(IReadOnlyList<(IEnumerable<TorchSharp.Modules.Parameter> Parameters, double LearningRate)> groups) =>
        MakeOptimizer(options, groups);

    internal static optim.Optimizer MakeOptimizer(FineTuneOptions options, IReadOnlyList<(IEnumerable<TorchSharp.Modules.Parameter> Parameters, double LearningRate)> groups)
    {
        if (options.Optimizer == OptimizerKind.Sgd)
            return optim.SGD(groups.Select(g => new TorchSharp.Modules.SGD.ParamGroup(g.Parameters, g.LearningRate, momentum: 0.9, weight_decay: options.WeightDecay)), groups[0].LearningRate);
        return optim.AdamW(groups.Select(g => new TorchSharp.Modules.AdamW.ParamGroup(g.Parameters, g.LearningRate, weight_decay: options.WeightDecay)), groups[0].LearningRate);
    }

    /// <summary>Sets each group's rate for this step of the schedule; returns the first group's.</summary>
    private double SetLearningRates(optim.Optimizer optimizer, int step, int steps)
    {
        double t = steps <= 1 ? 1 : step / (double)(steps - 1);
        double factor;
        if (options.Schedule == ScheduleKind.OneCycle)
        {
            const double warm = 0.25;
            factor = t < warm
                ? 1.0 / 25 + (1 - 1.0 / 25) * (t / warm)
                : 1e-4 + (1 - 1e-4) * 0.5 * (1 + Math.Cos(Math.PI * (t - warm) / (1 - warm)));
        }
        else
        {
            factor = 1e-4 + (1 - 1e-4) * 0.5 * (1 + Math.Cos(Math.PI * t));
        }
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = group.InitialLearningRate * factor;
        return optimizer.ParamGroups.First().LearningRate;
    }

    /// <summary>Keeps a copy of the weights of the best epoch so far (validation accuracy, then loss).</summary>
    private sealed class BestTracker(OnnxGraphModule? suffix, ClassifierHead head, (string Phase, int Epoch)? keep) : IDisposable
    {
        private Dictionary<string, Tensor>? _suffix;
        private Dictionary<string, Tensor>? _head;

        public EpochRecord? Best { get; private set; }

        public IReadOnlyDictionary<string, Tensor>? SuffixSnapshot => _suffix;

        public IReadOnlyDictionary<string, Tensor>? HeadSnapshot => _head;

        /// <summary>Takes over the best epoch of a checkpoint.</summary>
        public void Load(EpochRecord? best, Dictionary<string, Tensor>? suffixSnapshot, Dictionary<string, Tensor>? headSnapshot)
        {
            Dispose();
            Best = best;
            _suffix = suffixSnapshot;
            _head = headSnapshot;
        }

        public bool Offer(EpochRecord record)
        {
            if (keep is { } k && (record.Phase != k.Phase || record.Epoch != k.Epoch))
                return false;
            if (keep is null && Best is not null && (record.ValidationAccuracy < Best.ValidationAccuracy ||
                                     (record.ValidationAccuracy == Best.ValidationAccuracy && record.ValidationLoss >= Best.ValidationLoss)))
                return false;
            Best = record;
            Dispose();
            _suffix = suffix is null ? null : Snapshot(suffix.state_dict());
            _head = Snapshot(head.state_dict());
            return true;
        }

        public void Restore()
        {
            if (_head is null) return;
            using var _ = no_grad();
            Copy(_head, head.state_dict());
            if (_suffix is not null) Copy(_suffix, suffix!.state_dict());
        }

        private static Dictionary<string, Tensor> Snapshot(Dictionary<string, Tensor> state) =>
            state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());

        private static void Copy(Dictionary<string, Tensor> from, Dictionary<string, Tensor> to)
        {
            foreach (var (name, value) in from)
                to[name].copy_(value);
        }

        public void Dispose()
        {
            foreach (var t in (_suffix?.Values.AsEnumerable() ?? []).Concat(_head?.Values.AsEnumerable() ?? []))
                t.Dispose();
            _suffix = _head = null;
        }
    }
}

using MlNetTransfer.Featurization;
using MlNetTransfer.Progress;
using MlNetTransfer.Training;
using MlNetTransfer.Training.Backends;
using MlNetTransfer.TorchSharp.Heads;
using MlNetTransfer.TorchSharp.Learning;
using MlNetTransfer.TorchSharp.Learning.Callbacks;
using MlNetTransfer.TorchSharp.OnnxImport;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp;

/// <summary>
/// The TorchSharp backend of <see cref="ImageClassifierTrainer"/> (found by name; nothing here is called directly):
/// the recipe's two phases on views cached at the freeze boundary, each one <see cref="Learner.Fit"/> with its
/// callbacks. Phase "head" trains the head on the frozen base (every view a sample); phase "fine-tune" trains the
/// graph above the boundary with the head, each image once per epoch in a random one of its views, with
/// discriminative rates, early stopping, and the best validation epoch kept (the head-only ones included).
/// Same seed, data and threads: bit-identical weights.
/// </summary>
internal sealed class TorchSharpTrainingBackend : ITorchSharpBackend
{
    public ITrainedTorchModel Train(TorchTrainingJob job, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var model = Model.Create(job);
        var keeper = new BestEpochKeeper(model.Suffix, model.Head);
        try
        {
            var recipe = job.Recipe;
            var history = new List<EpochRecord>();
            var checkpoint = job.CheckpointPath is null ? null : new TrainingCheckpoint(job.CheckpointPath);
            bool damaged = job.Resume && checkpoint is { Exists: true, IsWhole: false };
            if (damaged)
                progress.Note($"the checkpoint {checkpoint!.Path} is damaged (its checksum does not match its content): not resumed from; starting from the beginning", warning: true);
            var state = job.Resume && !damaged ? checkpoint?.ReadState(job.Fingerprint) : null;
            byte[] optimizerState = [];
            if (state is not null)
            {
                optimizerState = checkpoint!.Restore(model.Suffix, model.Head, out var bestSuffix, out var bestHead);
                keeper.Load(state.Best, bestSuffix, bestHead);
                history.AddRange(state.History);
                progress.Note($"resuming from {checkpoint.Path}: {state.Phase} epoch {state.Epoch} done");
            }
            else if (job.Resume && !damaged)
            {
                progress.Note("no checkpoint to resume from: starting from the beginning");
            }

            // Continuing a fine-tuned model does not repeat its head phase; a head on the frozen base has no other.
            int headEpochs = job.WarmStart is null || !job.TrainSuffix ? recipe.HeadEpochs : 0;
            bool fineTune = job.TrainSuffix && recipe.Epochs > 0;
            bool stopped = false;
            var valLabels = Labels(job.Validation, model.ClassIndex);

            // Phase 1: the head alone, on pooled features of every view (the suffix is frozen here).
            int firstHeadEpoch = state is { Phase: "head", PhaseDone: false } ? state.Epoch + 1 : state is null ? 1 : headEpochs + 1;
            if (headEpochs > 0 && firstHeadEpoch <= headEpochs)
            {
                using var scope = NewDisposeScope();
                var (x, y) = ViewTensors.Pooled(model.Suffix, job.Train, model.ClassIndex);
                var (valX, _) = ViewTensors.Pooled(model.Suffix, job.Validation, model.ClassIndex, plainOnly: true);
                var valY = tensor(valLabels);
                using var optimizer = Optimizers.Make(recipe, [(model.Head.parameters(), recipe.LearningRate)]);
                TrainingCheckpoint.LoadOptimizer(optimizer, state?.Phase == "head" ? optimizerState : []);
                int samples = (int)x.shape[0], steps = (int)Math.Ceiling(samples / (double)recipe.BatchSize);
                var phase = new TrainingPhase
                {
                    Name = "head",
                    Epochs = headEpochs,
                    FirstEpoch = firstHeadEpoch,
                    FirstStep = state?.Phase == "head" ? state.Step : 0,
                    StepsPerEpoch = steps,
                    Batches = random => SampleBatches(x, y, random, recipe.BatchSize),
                    Forward = model.Head.forward,
                    Modules = [model.Head],
                    Optimizer = optimizer,
                    Validate = () => Evaluate(() => model.Head.forward(valX), valY),
                    LabelSmoothing = recipe.LabelSmoothing,
                };
                keeper.Keep = job.KeepHeadEpoch is { } kh ? ("head", kh) : job.KeepEpoch;
                var callbacks = new List<Callback>
                {
                    new LearningRateScheduler(recipe.Schedule, steps * headEpochs),
                    new DivergenceGuard(recipe.LearningRate, keeper, progress),
                    keeper,
                    new EpochReporter(history, $"Training the {Describe(job.Head)} on the frozen base", progress),
                };
                if ((job.KeepHeadEpoch ?? (job.KeepEpoch is { Phase: "head" } k ? k.Epoch : null)) is int last)
                    callbacks.Add(new StopAtEpoch(last));
                if (checkpoint is not null)
                    callbacks.Add(new Checkpointer(checkpoint, job.Fingerprint, model.Suffix, model.Head, keeper, history, null, () => keeper.Best?.Epoch));
                stopped = Learner.Fit(phase, job.Seed, callbacks, cancellationToken).Cancelled;
            }
            // Fine-tuning starts from this head epoch (the best one); a refit of this run starts its fine-tuning from the same one.
            int? headEpoch = job.KeepHeadEpoch ?? (keeper.Best is { Phase: "head" } headBest ? headBest.Epoch : state?.HeadEpoch);

            // Phase 2: the unfrozen suffix and the head, each image once per epoch in a random one of its views.
            if (fineTune && !stopped && job.KeepEpoch?.Phase != "head" && state is not { Phase: "fine-tune", PhaseDone: true })
            {
                bool continuing = state?.Phase == "fine-tune";
                if (!continuing)
                    keeper.Restore(); // start from the best (or the kept) head epoch
                keeper.Keep = job.KeepEpoch;
                var blockParameters = model.Suffix!.parameters().Where(p => p.requires_grad).ToList();
                using var optimizer = Optimizers.Make(recipe, [(blockParameters, recipe.LearningRate * recipe.BlockLearningRateFactor),
                    (model.Head.parameters(), recipe.LearningRate * recipe.FineTuneHeadFactor)]);
                TrainingCheckpoint.LoadOptimizer(optimizer, continuing ? optimizerState : []);
                int n = job.Train.Images.Count, steps = (int)Math.Ceiling(n / (double)recipe.BatchSize);
                var trainLabels = Labels(job.Train, model.ClassIndex);
                var suffix = model.Suffix;
                var phase = new TrainingPhase
                {
                    Name = "fine-tune",
                    Epochs = recipe.Epochs,
                    FirstEpoch = continuing ? state!.Epoch + 1 : 1,
                    FirstStep = continuing ? state!.Step : 0,
                    StepsPerEpoch = steps,
                    Batches = random => ImageBatches(job.Train, trainLabels, random, recipe.BatchSize),
                    Forward = x => model.Head.forward(suffix.forward(x)),
                    Modules = [suffix, model.Head],
                    Optimizer = optimizer,
                    Validate = () => ViewTensors.Evaluate(suffix, model.Head, job.Validation, valLabels),
                    LabelSmoothing = recipe.LabelSmoothing,
                };
                var stopping = new EarlyStopping(recipe.Patience, progress)
                {
                    BestLoss = continuing ? state!.BestLoss : double.MaxValue,
                    SinceBetter = continuing ? state!.SinceBetterLoss : 0,
                };
                var callbacks = new List<Callback>
                {
                    new LearningRateScheduler(recipe.Schedule, steps * recipe.Epochs),
                    new DivergenceGuard(recipe.LearningRate * recipe.BlockLearningRateFactor, keeper, progress),
                    keeper,
                    new EpochReporter(history, $"Fine-tuning {job.Boundary} -> top with the {Describe(job.Head)}", progress),
                    job.KeepEpoch is { } keep ? new StopAtEpoch(keep.Epoch) : stopping,
                };
                if (checkpoint is not null)
                    callbacks.Add(new Checkpointer(checkpoint, job.Fingerprint, suffix, model.Head, keeper, history, stopping, () => headEpoch));
                stopped = Learner.Fit(phase, job.Seed, callbacks, cancellationToken).Cancelled;
            }

            keeper.Restore();
            if (keeper.Best is { } kept)
                progress.Note(job.KeepEpoch is null
                    ? FormattableString.Invariant($"kept the best epoch: {kept.Phase} {kept.Epoch} (validation accuracy {kept.ValidationAccuracy:F4}, loss {kept.ValidationLoss:F4})")
                    : $"kept {kept.Phase} epoch {kept.Epoch}, as chosen before");
            return new TrainedTorchModel(model.Suffix, model.Head, history, keeper.Best, stopped, headEpoch);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            keeper.Dispose();
        }
    }

    public LearningRateSweep FindLearningRate(TorchTrainingJob job, LearningRateRange range, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var recipe = job.Recipe;
        var model = Model.Create(job);
        using var scope = NewDisposeScope();
        try
        {
            var labels = Labels(job.Train, model.ClassIndex);
            TrainingPhase phase;
            IReadOnlyList<double> factors;
            optim.Optimizer optimizer;
            if (!job.TrainSuffix)
            {
                // The head alone trains on pooled features of every view, computed once.
                var (x, y) = ViewTensors.Pooled(model.Suffix, job.Train, model.ClassIndex);
                optimizer = Optimizers.Make(recipe, [(model.Head.parameters(), range.Start)]);
                factors = [1.0];
                phase = new TrainingPhase
                {
                    Name = "lr-find", Epochs = int.MaxValue, StepsPerEpoch = (int)Math.Ceiling(x.shape[0] / (double)recipe.BatchSize),
                    Batches = random => SampleBatches(x, y, random, recipe.BatchSize), Forward = model.Head.forward, Modules = [model.Head],
                    Optimizer = optimizer, Validate = () => (double.NaN, double.NaN), LabelSmoothing = recipe.LabelSmoothing,
                };
            }
            else
            {
                // Fine-tuning: the sweep runs on block + head once the head has had its phase, as in training.
                if (recipe.HeadEpochs > 0)
                {
                    using var trained = (TrainedTorchModel)Train(job with { TrainSuffix = false, Recipe = recipe with { Epochs = 0 }, CheckpointPath = null }, progress, cancellationToken);
                    model.Head.load_state_dict(trained.HeadModule.state_dict());
                }
                var suffix = model.Suffix!;
                var blockParameters = suffix.parameters().Where(p => p.requires_grad).ToList();
                factors = [recipe.BlockLearningRateFactor, recipe.FineTuneHeadFactor];
                optimizer = Optimizers.Make(recipe, [(blockParameters, range.Start * factors[0]), (model.Head.parameters(), range.Start * factors[1])]);
                phase = new TrainingPhase
                {
                    Name = "lr-find", Epochs = int.MaxValue, StepsPerEpoch = (int)Math.Ceiling(job.Train.Images.Count / (double)recipe.BatchSize),
                    Batches = random => ImageBatches(job.Train, labels, random, recipe.BatchSize), Forward = x => model.Head.forward(suffix.forward(x)),
                    Modules = [suffix, model.Head], Optimizer = optimizer, Validate = () => (double.NaN, double.NaN), LabelSmoothing = recipe.LabelSmoothing,
                };
            }
            using (optimizer)
            {
                var finder = new LearningRateFinder(range.Start, range.End, range.Steps, factors);
                var reporter = new SweepProgress(range, progress);
                Learner.Fit(phase, job.Seed, [finder, reporter], cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                return finder.Sweep();
            }
        }
        finally
        {
            model.Dispose();
        }
    }

    private static string Describe(HeadKind head) => head == HeadKind.TorchSharpMlp ? "MLP head" : "softmax head";

    private static long[] Labels(ViewSet set, Dictionary<string, long> classIndex) => set.Images.Select(i => classIndex[i.Image.Label]).ToArray();

    /// <summary>Mini-batches of samples (rows of <paramref name="x"/>) in a random order.</summary>
    private static IEnumerable<Batch> SampleBatches(Tensor x, Tensor y, Random random, int batchSize)
    {
        int samples = (int)x.shape[0];
        var order = ViewTensors.Permutation(random, samples);
        for (int start = 0; start < samples; start += batchSize)
        {
            var index = tensor(order.AsSpan(start, Math.Min(batchSize, samples - start)).ToArray());
            yield return new Batch(x.index_select(0, index), y.index_select(0, index), (int)index.shape[0]);
        }
    }

    /// <summary>Mini-batches of images in a random order, each in a random one of its views.</summary>
    private static IEnumerable<Batch> ImageBatches(ViewSet set, long[] labels, Random random, int batchSize)
    {
        int n = set.Images.Count;
        var order = ViewTensors.Permutation(random, n);
        for (int start = 0; start < n; start += batchSize)
        {
            var members = order.AsSpan(start, Math.Min(batchSize, n - start)).ToArray();
            var x = ViewTensors.Of(set, members.Select(m => ((int)m, random.Next(set.Images[(int)m].Views.Count))).ToList());
            yield return new Batch(x, tensor(members.Select(m => labels[m]).ToArray()), members.Length);
        }
    }

    private static (double Loss, double Accuracy) Evaluate(Func<Tensor> logits, Tensor labels)
    {
        if (labels.shape[0] == 0)
            return (double.NaN, double.NaN);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return ViewTensors.Score(logits(), labels);
    }

    public float[][] TrainFromScratch(ScratchJob job, CancellationToken cancellationToken)
    {
        torch.manual_seed(job.Seed);
        torch.set_num_threads(job.Threads);
        int n = job.TrainPixels.Count, side = job.Side;
        using var cnn = new Scratch.SmallCnn(job.Classes);
        using var all = Pixels(job.TrainPixels, side);
        using var labels = torch.tensor(job.TrainLabels.Select(l => (long)l).ToArray());
        const int batchSize = 32;
        int steps = (n + batchSize - 1) / batchSize;
        // Adam at 1e-3 with a cosine schedule and weight decay 1e-4: a standard small-CNN recipe, fixed before any curve was seen.
        using var optimizer = torch.optim.AdamW(cnn.parameters(), lr: 1e-3, weight_decay: 1e-4);
        var phase = new TrainingPhase
        {
            Name = "scratch",
            Epochs = job.Epochs,
            StepsPerEpoch = steps,
            Modules = [cnn],
            Optimizer = optimizer,
            Forward = x => cnn.forward(x),
            Validate = () => (double.NaN, double.NaN),
            Batches = random => ScratchBatches(all, labels, n, batchSize, side, job.Mirror, random),
        };
        Learner.Fit(phase, job.Seed, [new LearningRateScheduler(LearningRateSchedule.Cosine, steps * job.Epochs)], cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        cnn.eval();
        var result = new float[job.EvaluationPixels.Count][];
        using (torch.no_grad())
        {
            for (int start = 0; start < result.Length; start += 64)
            {
                using var scope = torch.NewDisposeScope();
                var chunk = job.EvaluationPixels.Skip(start).Take(64).ToList();
                var x = Pixels(chunk, side);
                var p = nn.functional.softmax(cnn.forward(x), 1).cpu();
                for (int i = 0; i < chunk.Count; i++)
                    result[start + i] = p[i].data<float>().ToArray();
            }
        }
        return result;
    }

    /// <summary>Pixels 0..255 -> [n, 3, side, side], scaled to about -1..1.</summary>
    private static Tensor Pixels(IReadOnlyList<float[]> images, int side)
    {
        var flat = new float[images.Count * 3 * side * side];
        for (int i = 0; i < images.Count; i++)
            images[i].AsSpan(0, 3 * side * side).CopyTo(flat.AsSpan(i * 3 * side * side));
        using var raw = torch.tensor(flat, [images.Count, 3, side, side]);
        return raw.div(127.5f).sub_(1f);
    }

    /// <summary>Shuffled batches, each image shifted by up to side/8 pixels (zero padding) and, with mirror, flipped at random.</summary>
    private static IEnumerable<Batch> ScratchBatches(Tensor all, Tensor labels, int n, int batchSize, int side, bool mirror, Random random)
    {
        var order = Enumerable.Range(0, n).ToArray();
        random.Shuffle(order);
        int pad = Math.Max(1, side / 8);
        for (int start = 0; start < n; start += batchSize)
        {
            var idx = order.Skip(start).Take(batchSize).ToArray();
            var images = new List<Tensor>(idx.Length);
            foreach (var i in idx)
            {
                var image = all[i];
                var padded = nn.functional.pad(image, [pad, pad, pad, pad]);
                int dy = random.Next(2 * pad + 1), dx = random.Next(2 * pad + 1);
                var shifted = padded.narrow(1, dy, side).narrow(2, dx, side);
                images.Add(mirror && random.Next(2) == 1 ? shifted.flip(2) : shifted);
            }
            var x = torch.stack(images);
            var y = labels.index(torch.tensor(idx.Select(i => (long)i).ToArray()));
            yield return new Batch(x, y, idx.Length);
        }
    }

    /// <summary>The modules a job trains: the graph above the boundary (null for a head on the frozen base) and the head.</summary>
    private sealed class Model : IDisposable
    {
        private Model(OnnxGraphModule? suffix, ClassifierHead head, Dictionary<string, long> classIndex)
        {
            Suffix = suffix;
            Head = head;
            ClassIndex = classIndex;
        }

        public OnnxGraphModule? Suffix { get; }
        public ClassifierHead Head { get; }
        public Dictionary<string, long> ClassIndex { get; }

        public static Model Create(TorchTrainingJob job)
        {
            torch.manual_seed(job.Seed);
            torch.set_num_threads(job.Threads);
            const string features = Onnx.FeaturizerGraphBuilder.FeaturesTensor;
            var suffix = job.Boundary == features ? null
                : new OnnxGraphModule(job.Composed!, job.Boundary, features,
                    job.TrainSuffix ? OnnxGraphModule.TrainableInitializers(job.Composed!, job.Boundary, features) : new HashSet<string>(), job.Recipe.TrainBatchNorm);
            var head = new ClassifierHead(job.Head == HeadKind.TorchSharpMlp ? ClassifierHead.Kind.Mlp : ClassifierHead.Kind.Softmax, job.FeatureLength, job.Classes.Count);
            if (job.WarmStart is { } warm)
            {
                head.SetOutput(warm.OutputWeights, warm.OutputBiases);
                if (warm.HiddenWeights is not null)
                    head.SetHidden(warm.HiddenWeights, warm.HiddenBiases!);
            }
            var classIndex = job.Classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => (long)p.i);
            return new Model(suffix, head, classIndex);
        }

        public void Dispose()
        {
            Suffix?.Dispose();
            Head.Dispose();
        }
    }

    /// <summary>Reports the sweep as a stage, one step per batch.</summary>
    private sealed class SweepProgress(LearningRateRange range, IProgress<ProgressEvent>? progress) : Callback
    {
        public override void BeforeFit(FitContext context) =>
            progress?.Report(new StageStarted("lr-find", FormattableString.Invariant($"Learning-rate range test, {range.Start:0e0} to {range.End:0e0}"), range.Steps));

        public override void AfterBatch(FitContext context, double loss) => progress?.Report(new StageAdvanced("lr-find", context.Step, range.Steps));

        public override void AfterFit(FitContext context) => progress?.Report(new StageFinished("lr-find", context.Step, TimeSpan.Zero));
    }
}

/// <summary>What the backend trained: the modules with the kept weights, and how they were chosen.</summary>
internal sealed class TrainedTorchModel(OnnxGraphModule? suffix, ClassifierHead head, IReadOnlyList<EpochRecord> history, EpochRecord? best, bool stopped, int? headEpoch)
    : ITrainedTorchModel
{
    public IReadOnlyList<EpochRecord> History { get; } = history;

    public EpochRecord? Best { get; } = best;

    public bool Stopped { get; } = stopped;

    /// <summary>The head epoch fine-tuning started from (a refit starts from the same one).</summary>
    public int? HeadEpoch { get; } = headEpoch;

    public ClassifierHead HeadModule => head;

    public IReadOnlyDictionary<string, float[]>? TunedInitializers
    {
        get
        {
            if (suffix is null)
                return null;
            var values = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var (name, tensor) in suffix.CurrentInitializers())
                using (tensor)
                    values[name] = tensor.contiguous().data<float>().ToArray();
            return values;
        }
    }

    public HeadWeights Head
    {
        get
        {
            using var scope = NewDisposeScope();
            static float[] Values(Tensor t) => t.detach().contiguous().data<float>().ToArray();
            var output = head.Output;
            int classes = (int)output.out_features, inputs = (int)output.in_features;
            var weights = Values(output.weight!);
            var rows = Enumerable.Range(0, classes).Select(c => weights.AsSpan(c * inputs, inputs).ToArray()).ToArray();
            var biases = Values(output.bias!);
            if (head.Hidden is not { } hidden)
                return new HeadWeights(rows, biases);
            return new HeadWeights(rows, biases, Values(hidden.weight!), Values(hidden.bias!));
        }
    }

    public float[][] Probabilities(ViewSet images) => ViewTensors.Probabilities(suffix, head, images);

    public float[][] Features(ViewSet images) => ViewTensors.Features(suffix, images);

    public void Dispose()
    {
        suffix?.Dispose();
        head.Dispose();
    }
}

/// <summary>The optimizer of the recipe over parameter groups with their own rates.</summary>
internal static class Optimizers
{
    public static optim.Optimizer Make(FineTuningOptions recipe, IReadOnlyList<(IEnumerable<global::TorchSharp.Modules.Parameter> Parameters, double LearningRate)> groups)
    {
        double decay = recipe.EffectiveWeightDecay;
        if (recipe.Optimizer == OptimizerKind.Sgd)
            return optim.SGD(groups.Select(g => new global::TorchSharp.Modules.SGD.ParamGroup(g.Parameters, g.LearningRate, momentum: 0.9, weight_decay: decay)), groups[0].LearningRate);
        return optim.AdamW(groups.Select(g => new global::TorchSharp.Modules.AdamW.ParamGroup(g.Parameters, g.LearningRate, weight_decay: decay)), groups[0].LearningRate);
    }
}

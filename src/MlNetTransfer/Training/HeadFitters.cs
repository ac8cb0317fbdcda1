using System.Globalization;
using Microsoft.ML;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;

namespace MlNetTransfer.Training;

/// <summary>
/// Fits a head on views, choosing what it chooses (the L2 weight, the epoch) on validation views, or keeping what an
/// earlier fit chose (a refit on all the data). One per trainer backend; the trainer's split, refit, evaluation and
/// model assembly are the same for all.
/// </summary>
internal interface IHeadFitter
{
    /// <param name="train">Training views.</param>
    /// <param name="validation">Plain views to choose on (empty for a refit).</param>
    /// <param name="chosen">The fit whose choice a refit keeps; null to choose.</param>
    /// <param name="name">Names the fit ("main", "refit") for its checkpoint.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="cancellationToken">Stops training between batches (the best epoch so far is kept).</param>
    FittedHead Fit(ViewSet train, ViewSet validation, FittedHead? chosen, string name, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken);
}

/// <summary>A fitted head: its predictions, what it chose, and how it goes into the saved model and its metadata.</summary>
internal abstract class FittedHead : IDisposable
{
    /// <summary>What was chosen, in words ("L2 = 1", "head epoch 3").</summary>
    public abstract string Choice { get; }

    /// <summary>Stopped early by the user (the best so far was kept).</summary>
    public virtual bool Stopped => false;

    /// <summary>
    /// The temperature the saved head's logits are divided by (1: none), fitted on held-out predictions after the fit
    /// (<see cref="Evaluation.TemperatureScaling"/>); <see cref="Probabilities"/> and <see cref="Assemble"/> both apply it.
    /// </summary>
    public double Temperature { get; set; } = 1;

    /// <summary>Class probabilities of each image's plain view, as the saved model gives them (with <see cref="Temperature"/>).</summary>
    public float[][] Probabilities(ViewSet images)
    {
        var raw = RawProbabilities(images);
        return Temperature == 1 ? raw : raw.Select(p => Evaluation.TemperatureScaling.Apply(p, Temperature)).ToArray();
    }

    /// <summary>Class probabilities of each image's plain view, before any temperature.</summary>
    public abstract float[][] RawProbabilities(ViewSet images);

    /// <summary>
    /// The novelty scorer the saved graph gets as its <c>Novelty</c> output (null: none), fitted after the fit on
    /// <see cref="PooledFeatures"/> of the training images; <see cref="Assemble"/> attaches it.
    /// </summary>
    public NoveltyScorer? Novelty { get; set; }

    /// <summary>The pooled conv-base features of each image's plain view, as the saved graph computes them (through a tuned block, when one trained).</summary>
    public abstract float[][] PooledFeatures(ViewSet images);

    /// <summary>Predictions of each training image by a fit that did not see it (the L-BFGS head's cross-validation at its L2), or null.</summary>
    public virtual OutOfFoldPredictions? OutOfFold => null;

    /// <summary>The whole chain (stock ML.NET transforms), and what to free once it is saved or thrown away.</summary>
    public abstract (ITransformer Model, DataViewSchema InputSchema, Action? Release) Assemble();

    public abstract ModelMetadata.HeadInfo HeadInfo();

    public virtual ModelMetadata.FineTuneInfo? FineTuneInfo() => null;

    /// <summary>The options that shaped it, for the metadata.</summary>
    public abstract IEnumerable<(string Key, string Value)> Options();

    private int _disposed;

    /// <summary>Frees what it holds (TorchSharp modules); once, however often it is called.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Release();
    }

    protected virtual void Release()
    {
    }
}

/// <summary>ML.NET's L-BFGS softmax head on pooled features; it chooses its L2 weight by cross-validation on the images it fits.</summary>
internal sealed class LbfgsHeadFitter(TrainingRun run, LbfgsHeadOptions options) : IHeadFitter
{
    public FittedHead Fit(ViewSet train, ViewSet validation, FittedHead? chosen, string name, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var head = new LbfgsHeadTrainer(run.Ml, options).Train(train.Images, run.Dataset.Classes, run.FeatureLength, run.Options.Seed,
            (chosen as Fitted)?.Head.L2, progress, cancellationToken, outOfFold: run.Options.Calibrate);
        // A refit keeps the table that chose its L2.
        if (chosen is Fitted before)
            head = head with { CrossValidation = before.Head.CrossValidation };
        return new Fitted(run, options, head);
    }

    private sealed class Fitted(TrainingRun run, LbfgsHeadOptions options, LbfgsHead head) : FittedHead
    {
        public LbfgsHead Head { get; } = head;

        public override string Choice => FormattableString.Invariant($"L2 = {Head.L2}");

        public override OutOfFoldPredictions? OutOfFold => Head.OutOfFold;

        public override float[][] PooledFeatures(ViewSet images) => images.Images.Select(i => i.Plain).ToArray();

        public override float[][] RawProbabilities(ViewSet images) =>
            images.Images.Count == 0 ? [] : LbfgsHeadTrainer.Predict(run.Ml, Head.Predictor, images.Images.Select(i => i.Plain), run.FeatureLength, run.Dataset.Classes[0]);

        public override (ITransformer, DataViewSchema, Action?) Assemble()
        {
            var graph = run.Source.Graph!;
            var predictor = Head.Predictor;
            if (Temperature != 1)
            {
                // The temperature goes into ML.NET's own head: W / T and b / T.
                var (w, b) = MaxEntHead.Read(predictor) ?? throw new InvalidOperationException("the L-BFGS head is not a maximum-entropy model");
                predictor = MaxEntHead.Create(run.Ml, MaxEntHead.Scale(w, Temperature), MaxEntHead.Scale(b, Temperature), run.Dataset.Classes);
            }
            if (run.Options.TestTimeFlip || Novelty is not null)
                return ModelAssembler.AssembleWithOwnGraph(run, run.Source.Composed, graph.FeatureLength, predictor, Novelty, run.Options.TestTimeFlip);
            var (model, schema) = ModelAssembler.Assemble(run.Ml, graph, predictor);
            return (model, schema, null);
        }

        public override ModelMetadata.HeadInfo HeadInfo() => new(ModelMetadata.HeadKinds.LbfgsSoftmax, options.L1, Head.L2, Head.CrossValidation);

        public override IEnumerable<(string, string)> Options() =>
        [
            ("folds", options.Folds.ToString(CultureInfo.InvariantCulture)),
            ("l2Grid", string.Join(" ", options.L2Grid.Select(v => v.ToString(CultureInfo.InvariantCulture)))),
        ];
    }
}

/// <summary>A TorchSharp head (and, when fine-tuning, the block(s) above the freeze boundary), trained by the backend; it chooses the epoch.</summary>
internal sealed class TorchHeadFitter(TrainingRun run, ITorchSharpBackend backend, HeadWeights? warm) : IHeadFitter
{
    public FittedHead Fit(ViewSet train, ViewSet validation, FittedHead? chosen, string name, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var before = (chosen as Fitted)?.Model;
        var keep = before?.Best is { } best ? (best.Phase, best.Epoch) : ((string, int)?)null;
        var job = run.Job(train, validation, warm, keep, name, before?.HeadEpoch);
        progress.Note(FormattableString.Invariant(
            $"{train.Images.Count} training images x {run.TrainPlan.Count} view(s) of [{string.Join(",", train.Shape)}] at {run.Prefix.Tensor}: {Where(train, validation)}"));
        var model = backend.Train(job, progress, cancellationToken);
        if (model.Stopped && model.Best is null)
        {
            // Stopped before a single epoch finished: there is nothing worth saving.
            model.Dispose();
            throw new OperationCanceledException(cancellationToken);
        }
        return new Fitted(run, model, (chosen as Fitted)?.Model.History ?? model.History, chosen is not null);
    }

    private string Where(ViewSet train, ViewSet validation)
    {
        long memory = train.Bytes + validation.Bytes, disk = train.DiskBytes + validation.DiskBytes;
        if (disk == 0 || run.Pipeline.Spill is not { } spill)
            return FormattableString.Invariant($"{memory / 1048576.0:F0} MiB in memory");
        string wide = spill.WideViews > 0 ? FormattableString.Invariant($"; {spill.WideViews} view(s) as 32-bit floats, a value beyond 16 bits' range") : "";
        return FormattableString.Invariant($"{disk / 1048576.0:F0} MiB on disk ({(spill.Half ? "16" : "32")}-bit floats, {spill.FilePath}{wide})");
    }

    private sealed class Fitted(TrainingRun run, ITrainedTorchModel model, IReadOnlyList<EpochRecord> selection, bool isRefit) : FittedHead
    {
        public ITrainedTorchModel Model { get; } = model;

        public override string Choice => Model.Best is { } b ? $"{b.Phase} epoch {b.Epoch}" : "the last epoch";

        public override bool Stopped => Model.Stopped;

        public override float[][] RawProbabilities(ViewSet images) => images.Images.Count == 0 ? [] : Model.Probabilities(images);

        public override float[][] PooledFeatures(ViewSet images) => images.Images.Count == 0 ? [] : Model.Features(images);

        public override (ITransformer, DataViewSchema, Action?) Assemble()
        {
            // Tuned initializers (+ the MLP's hidden layer) into the featurizer graph, the softmax layer into ML.NET's own head.
            var w = Model.Head;
            var hidden = w.HiddenWeights is null ? ((float[], float[])?)null : (w.HiddenWeights, w.HiddenBiases!);
            var tuned = TunedGraphWriter.Write(run.Source.Composed, Model.TunedInitializers, hidden);
            var head = MaxEntHead.Create(run.Ml, MaxEntHead.Scale(w.OutputWeights, Temperature), MaxEntHead.Scale(w.OutputBiases, Temperature), run.Dataset.Classes);
            return ModelAssembler.AssembleWithOwnGraph(run, tuned, w.HiddenBiases?.Length ?? run.FeatureLength, head, Novelty, run.Options.TestTimeFlip);
        }

        public override ModelMetadata.HeadInfo HeadInfo() =>
            new(ModelMetadata.HeadKinds.Of(run.Head), 0, null, []) { WeightDecay = run.Options.FineTuning.EffectiveWeightDecay };

        public override ModelMetadata.FineTuneInfo FineTuneInfo()
        {
            var freeze = run.Freeze;
            return new ModelMetadata.FineTuneInfo(freeze is null ? "" : run.Options.FineTuning.Unfreeze, run.Prefix.Tensor,
                freeze?.Unfrozen.Select(b => b.Name).ToList() ?? [], run.Options.FineTuning.AugmentedViews,
                Rows(selection), Model.Best is { } b ? $"{b.Phase} {b.Epoch}" : null, Model.Stopped)
            {
                RefitEpochs = isRefit ? Rows(Model.History) : [],
            };
        }

        public override IEnumerable<(string, string)> Options()
        {
            var r = run.Options.FineTuning;
            static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
            yield return ("head", ModelMetadata.HeadKinds.Of(run.Head));
            yield return ("headEpochs", r.HeadEpochs.ToString(CultureInfo.InvariantCulture));
            if (run.Freeze is not null)
            {
                yield return ("epochs", r.Epochs.ToString(CultureInfo.InvariantCulture));
                yield return ("blockLearningRateFactor", F(r.BlockLearningRateFactor));
                yield return ("fineTuneHeadFactor", F(r.FineTuneHeadFactor));
                yield return ("patience", r.Patience.ToString(CultureInfo.InvariantCulture));
                yield return ("trainBatchNorm", r.TrainBatchNorm.ToString());
            }
            yield return ("learningRate", F(r.LearningRate));
            yield return ("optimizer", r.Optimizer.ToString());
            yield return ("schedule", r.Schedule.ToString());
            yield return ("weightDecay", F(r.EffectiveWeightDecay));
            yield return ("trainBatchSize", r.BatchSize.ToString(CultureInfo.InvariantCulture));
            yield return ("augmentedViews", r.AugmentedViews.ToString(CultureInfo.InvariantCulture));
            if (r.LabelSmoothing > 0)
                yield return ("labelSmoothing", F(r.LabelSmoothing));
        }

        private static List<ModelMetadata.EpochRow> Rows(IEnumerable<EpochRecord> history) =>
            history.Select(h => new ModelMetadata.EpochRow(h.Phase, h.Epoch, h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy, h.LearningRate, h.Elapsed.TotalSeconds)).ToList();

        protected override void Release() => Model.Dispose();
    }
}

using System.Globalization;
using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using MlNetTransfer.IO;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Export;
using MlNetTransfer.Training.FineTuning;
using Onnx;

namespace MlNetTransfer.Training;

/// <summary>
/// Fine-tuning end to end: cache the frozen prefix's activations (ONNX Runtime), train the unfrozen block(s) and the
/// head (TorchSharp), write the tuned weights back into one ONNX featurizer and the softmax layer into ML.NET's own
/// head, and assemble the same kind of stock ML.NET model zip as feature extraction. Also: the MLP head on the frozen
/// base, and continued training of a saved model on new or more data.
/// </summary>
public sealed class FineTuneLearner(FineTuneLearnerOptions? options = null)
{
    private readonly FineTuneLearnerOptions _options = options ?? new FineTuneLearnerOptions();

    public FineTuneLearnerOptions Options => _options;

    public TrainedImageClassifier Train(string data, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default) =>
        Train(ImageDatasetLoader.Load(data, _options.Dataset), progress, cancellationToken);

    public TrainedImageClassifier Train(ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("prepare", $"Preparing conv base {_options.ConvBase.Name}", 0));
        var graph = FeaturizerGraphCache.GetOrBuild(_options.ConvBase);
        var composed = OnnxGraph.Load(graph.Path);
        progress?.Report(new StageFinished("prepare", 0, clock.Elapsed));
        var sha = FeaturizerGraphCache.FileHash(graph.Preset.RequireModelFile());
        return Run(dataset, graph.Preset, composed, graph.FeatureLength, sha, warmStart: null, previous: null, progress, cancellationToken);
    }

    /// <summary>Whole activation sets are kept beside the feature cache (same switch and root).</summary>
    private string? ActivationCacheFolder => _options.Featurizer.UseFeatureCache
        ? Path.Combine(_options.Featurizer.FeatureCacheRoot ?? IO.ToolPaths.CacheRoot, "activations")
        : null;

    /// <summary>
    /// The learning-rate range test on this data with this recipe (head on the frozen base, or block + head when
    /// fine-tuning): what <c>lr-find</c> runs.
    /// </summary>
    public LearningRateSweep FindLearningRate(ImageDataset dataset, double start = 1e-6, double end = 10, int steps = 100,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        dataset.EnsureTrainable(_options.Dataset.MinImagesPerClass);
        var graph = FeaturizerGraphCache.GetOrBuild(_options.ConvBase);
        var composed = OnnxGraph.Load(graph.Path);
        var recipe = _options.Recipe;
        string boundary = _options.FineTune
            ? FreezeBoundary.Resolve(graph.Preset, composed.Graph, recipe.Unfreeze, FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor
            : FeaturizerGraphBuilder.FeaturesTensor;
        using var builder = new BoundaryCacheBuilder(new MLContext(_options.Seed), composed, boundary, graph.Preset.Preprocessing, _options.Featurizer.Threads, _options.Featurizer.BatchSize,
            _options.Featurizer.Validation, ActivationCacheFolder);
        var cache = builder.Build(dataset.Train, recipe.AugmentedViews, _options.Seed, "cache train", progress, cancellationToken);
        return LearningRateFinder.Run(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, graph.FeatureLength, cache, dataset.Classes, recipe,
            _options.FineTune, _options.Seed, start, end, steps, progress, cancellationToken);
    }

    /// <summary>
    /// Continues training a saved model (made by this tool) on <paramref name="dataset"/>: its tuned block and head are the
    /// starting point, so the head phase is skipped. The classes must be the model's.
    /// </summary>
    public TrainedImageClassifier Retrain(string modelZip, ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        var metadata = ModelArchive.ReadMetadata(modelZip)
                       ?? throw new ModelLoadException($"'{modelZip}' was not made by MlNetTransfer: it has no {ModelMetadata.EntryName}, so it cannot be trained further.");
        if (!metadata.Classes.SequenceEqual(dataset.Classes))
            throw new DatasetException($"{dataset.Source}: classes ({string.Join(", ", dataset.Classes)}) differ from the model's ({string.Join(", ", metadata.Classes)}); continued training needs the same classes.");
        var preset = (metadata.ConvBase.Spec ?? throw new ModelLoadException($"'{modelZip}' has no conv-base spec in its metadata (made by an older version)."))
            .ApplyTo(new ConvBasePreset { Name = metadata.ConvBase.Name, Description = metadata.ConvBase.Description });
        var (composed, hiddenWeights, hiddenBiases, _) = TunedGraphWriter.SplitHead(global::Onnx.ModelProto.Parser.ParseFrom(ModelArchive.ReadEmbeddedOnnx(modelZip)));
        HeadWeights warm;
        var ml = new MLContext(_options.Seed);
        var loaded = ModelArchive.Load(ml, modelZip, out _);
        try
        {
            var (weights, biases) = MaxEntHead.Read(loaded) ?? throw new ModelLoadException($"'{modelZip}' has no maximum-entropy head to continue from.");
            warm = new HeadWeights(weights, biases, hiddenWeights, hiddenBiases);
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
        if ((hiddenWeights is not null) != (_options.Recipe.Head == Heads.HeadKind.Mlp))
            throw new ConvBaseException($"'{modelZip}' has a {(hiddenWeights is null ? "linear" : "MLP")} head; continue it with --head {(hiddenWeights is null ? "linear" : "mlp")}.");
        int featureLength = metadata.ConvBase.FeatureLength;
        progress.Note($"continuing from {modelZip} ({metadata.Mode}, {metadata.Classes.Count} classes)");
        return Run(dataset, preset, composed, featureLength, metadata.ConvBase.ModelSha256, warm, metadata, progress, cancellationToken);
    }

    private TrainedImageClassifier Run(ImageDataset dataset, ConvBasePreset preset, ModelProto composed, int featureLength, string baseSha,
        HeadWeights? warmStart, ModelMetadata? previous, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        dataset.EnsureTrainable(_options.Dataset.MinImagesPerClass);
        progress?.Report(new DatasetLoaded(dataset));
        var recipe = _options.Recipe;
        var ml = new MLContext(_options.Seed);
        var spec = preset.Preprocessing;

        // Early stopping needs a validation split: the data's own, else a stratified share of train.
        IReadOnlyList<LabeledImage> train = dataset.Train;
        IReadOnlyList<LabeledImage> validation = dataset.Validation;
        List<LabeledImage>? heldOut = null;
        string validationName = "validation";
        if (validation.Count == 0)
        {
            (var kept, var held) = StratifiedSplitter.Split(train, recipe.HoldOutFraction, _options.Seed);
            (train, validation, heldOut) = (kept, held, held);
            validationName = "validation (held out from train)";
            progress.Note(FormattableString.Invariant($"no validation split: {held.Count} training images ({recipe.HoldOutFraction:P0} per class) held out for early stopping"));
        }

        FreezeBoundary? freeze = _options.FineTune
            ? FreezeBoundary.Resolve(preset, composed.Graph, recipe.Unfreeze, FeaturizerGraphBuilder.BaseInputTensor(composed))
            : null;
        string boundary = freeze?.Tensor ?? FeaturizerGraphBuilder.FeaturesTensor;
        if (freeze is not null)
            progress.Note($"unfreezing {string.Join(", ", freeze.Unfrozen.Select(b => b.Name))}; activations cached at {freeze.Tensor}");

        BoundaryCache trainCache, validationCache;
        BoundaryCache? testCache = null;
        using (var cacheBuilder = new BoundaryCacheBuilder(ml, composed, boundary, spec, _options.Featurizer.Threads, _options.Featurizer.BatchSize, _options.Featurizer.Validation,
                   ActivationCacheFolder))
        {
            trainCache = cacheBuilder.Build(train, recipe.AugmentedViews, _options.Seed, "cache train", progress, cancellationToken);
            validationCache = cacheBuilder.Build(validation, 0, _options.Seed, "cache validation", progress, cancellationToken);
            if (dataset.Test.Count > 0)
                testCache = cacheBuilder.Build(dataset.Test, 0, _options.Seed, "cache test", progress, cancellationToken);
        }
        var unreadable = trainCache.Unreadable.Concat(validationCache.Unreadable).Concat(testCache?.Unreadable ?? []).ToList();
        foreach (var bad in unreadable)
            progress.Note($"skipped {bad.Path}: {bad.Reason}", warning: true);
        foreach (var used in trainCache.Warnings.Concat(validationCache.Warnings).Concat(testCache?.Warnings ?? []))
            progress.Note($"used despite: {used.Path}: {used.Reason}", warning: true);
        dataset = dataset.Without(unreadable);
        progress.Note(FormattableString.Invariant($"activation cache: {trainCache.Images.Count + validationCache.Images.Count + (testCache?.Images.Count ?? 0)} images, [{string.Join(",", trainCache.ActivationShape)}] per view, {trainCache.Bytes / 1048576.0 + validationCache.Bytes / 1048576.0:F0} MiB"));

        var tuner = new FineTuner(recipe with { Epochs = _options.FineTune ? recipe.Epochs : 0 }, _options.Seed);
        TrainingCheckpoint? Checkpoint(string name) =>
            _options.CheckpointFolder is { } folder ? new TrainingCheckpoint(Path.Combine(folder, name + ".ckpt")) : null;
        var result = tuner.Train(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, featureLength, trainCache, validationCache, dataset.Classes,
            warmStart, progress, cancellationToken, checkpoint: Checkpoint("main"), resume: _options.Resume);
        if (result.Stopped && result.Best is null)
        {
            // Stopped before a single epoch finished: there is nothing worth saving.
            result.Dispose();
            throw new OperationCanceledException(cancellationToken);
        }
        var firstProbabilities = result.ValidationProbabilities;
        var selectionHistory = result.History;
        var heldOutReport = Report(validationName, validationCache, firstProbabilities, dataset.Classes);
        bool refit = heldOut is not null && recipe.RefitAfterHoldOut && result.Best is not null && !result.Stopped;
        if (refit)
        {
            // The held-out share chose the epoch; now every training image trains, and that epoch is kept.
            var best = result.Best!;
            progress.Note($"refitting on all {dataset.Train.Count} training images, keeping {best.Phase} epoch {best.Epoch} (chosen on the held-out share)");
            BoundaryCache heldOutViews;
            using (var cacheBuilder = new BoundaryCacheBuilder(ml, composed, boundary, spec, _options.Featurizer.Threads, _options.Featurizer.BatchSize, _options.Featurizer.Validation,
                   ActivationCacheFolder))
                heldOutViews = cacheBuilder.Build(heldOut!, recipe.AugmentedViews, _options.Seed + 1, "cache held-out views", progress, cancellationToken);
            var allTrain = new BoundaryCache
            {
                ActivationShape = trainCache.ActivationShape,
                Images = trainCache.Images.Concat(heldOutViews.Images).ToList(),
                Unreadable = [],
            };
            var empty = new BoundaryCache { ActivationShape = trainCache.ActivationShape, Images = [], Unreadable = [] };
            result.Dispose();
            result = tuner.Train(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, featureLength, allTrain, empty, dataset.Classes,
                warmStart, progress, cancellationToken, keepEpoch: (best.Phase, best.Epoch), checkpoint: Checkpoint("refit"), resume: _options.Resume);
            train = dataset.Train;
        }
        using var _ = result;

        // Write back: tuned initializers (+ MLP hidden layer) into the featurizer graph, the softmax layer into ML.NET's head.
        var tuned = TunedGraphWriter.Write(composed, result.Suffix?.CurrentInitializers(), result.Head);
        var tunedPath = Path.Combine(ToolPaths.CacheRoot, "tuned", $"{preset.Name}-{Guid.NewGuid():N}.onnx");
        OnnxGraph.Save(tuned, tunedPath);
        int headInputs = (int)result.Head.Output.in_features;
        var graphFile = new FeaturizerGraphFile(tunedPath, preset, headInputs, [], "tuned");
        var output = result.Head.Output;
        int k = dataset.Classes.Count;
        var weights = output.weight!.detach().contiguous().data<float>().ToArray();
        var head = MaxEntHead.Create(ml, Enumerable.Range(0, k).Select(c => weights.AsSpan(c * headInputs, headInputs).ToArray()).ToArray(),
            output.bias!.detach().contiguous().data<float>().ToArray(), dataset.Classes);
        var (model, inputSchema) = ModelAssembler.Assemble(ml, graphFile, head);

        // A refit model was not evaluated on the held-out share (it trained on it): only the test split reports it.
        var reports = refit ? new List<ClassificationReport>() : [heldOutReport];
        if (testCache is not null)
        {
            var test = Report("test", testCache, FineTuner.Probabilities(result.Suffix, result.Head, testCache), dataset.Classes);
            // The reported split is validation when the data has one, else test (the held-out share only stopped training).
            if (dataset.Validation.Count > 0) reports.Add(test); else reports.Insert(0, test);
        }
        if (reports.Count == 0)
        {
            // No test split either: the held-out figures of the first run are all there is; say so.
            reports.Add(Report(validationName + ", before the refit", validationCache, firstProbabilities, dataset.Classes));
        }

        var metadata = new ModelMetadata
        {
            Mode = _options.FineTune ? "fine-tune" : "feature-extraction",
            ConvBase = new ModelMetadata.ConvBaseInfo(preset.Name, preset.Description, spec.Describe(), preset.Pooling.ToString(), featureLength, baseSha)
            {
                Spec = ConvBaseSpecFile.From(preset),
            },
            Classes = dataset.Classes,
            Head = new ModelMetadata.HeadInfo(recipe.Head.ToString().ToLowerInvariant(), 0, (float)recipe.WeightDecay, []),
            Training = new ModelMetadata.TrainingInfo(dataset.Source, dataset.SplitOrigin, _options.Seed, false,
                new Dictionary<string, int> { ["train"] = train.Count, ["validation"] = validation.Count, ["test"] = dataset.Test.Count },
                dataset.Skipped.Count, RecipeOptions(recipe, previous)),
            FineTune = new ModelMetadata.FineTuneInfo(freeze is null ? "" : recipe.Unfreeze, boundary, freeze?.Unfrozen.Select(b => b.Name).ToList() ?? [],
                recipe.AugmentedViews,
                Rows(selectionHistory), result.Best is { } b ? $"{b.Phase} {b.Epoch}" : null, result.Stopped)
            {
                RefitEpochs = refit ? Rows(result.History) : [],
            },
            Metrics = reports.Select(r => new ModelMetadata.MetricsSummary(r.Split, r.Count, r.MicroAccuracy, r.MacroAccuracy, r.LogLoss)).ToList(),
        };
        return new TrainedImageClassifier(ml, model, inputSchema, dataset, reports, metadata, release: () => TryDelete(tunedPath));
    }

    private static List<ModelMetadata.EpochRow> Rows(IEnumerable<EpochRecord> history) =>
        history.Select(h => new ModelMetadata.EpochRow(h.Phase, h.Epoch, h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy, h.LearningRate, h.Elapsed.TotalSeconds)).ToList();

    private static ClassificationReport Report(string split, BoundaryCache cache, float[][] probabilities, IReadOnlyList<string> classes) =>
        ClassificationReport.Create(split, classes, cache.Images.Select((c, i) => (c.Image.Path, c.Image.Label, probabilities[i])).ToList());

    private static Dictionary<string, string> RecipeOptions(FineTuneOptions r, ModelMetadata? previous)
    {
        string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var options = new Dictionary<string, string>
        {
            ["head"] = r.Head.ToString().ToLowerInvariant(),
            ["headEpochs"] = r.HeadEpochs.ToString(CultureInfo.InvariantCulture),
            ["epochs"] = r.Epochs.ToString(CultureInfo.InvariantCulture),
            ["learningRate"] = F(r.LearningRate),
            ["blockLearningRateFactor"] = F(r.BlockLearningRateFactor),
            ["fineTuneHeadFactor"] = F(r.FineTuneHeadFactor),
            ["optimizer"] = r.Optimizer.ToString(),
            ["schedule"] = r.Schedule.ToString(),
            ["weightDecay"] = F(r.WeightDecay),
            ["batchSize"] = r.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["augmentedViews"] = r.AugmentedViews.ToString(CultureInfo.InvariantCulture),
            ["patience"] = r.Patience.ToString(CultureInfo.InvariantCulture),
            ["trainBatchNorm"] = r.TrainBatchNorm.ToString(),
        };
        if (previous is not null)
            options["continuedFrom"] = $"{previous.Mode} model of {previous.CreatedUtc:u} trained on {previous.Training.Data}";
        return options;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>
/// Feature extraction end to end: read the data, featurize it with the frozen conv base, train the dense head
/// (regularization by cross-validation on the training split), evaluate on the held-out split(s), and assemble one
/// ML.NET model of stock components that an app loads into a PredictionEngine.
/// </summary>
public sealed class TransferLearner(TransferLearnerOptions? options = null)
{
    private readonly TransferLearnerOptions _options = options ?? new TransferLearnerOptions();

    public TransferLearnerOptions Options => _options;

    /// <summary>Trains on a data folder or manifest.</summary>
    public TrainedImageClassifier Train(string data, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default) =>
        Train(ImageDatasetLoader.Load(data, _options.Dataset), progress, cancellationToken);

    public TrainedImageClassifier Train(ImageDataset dataset, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        dataset.EnsureTrainable(_options.Dataset.MinImagesPerClass);
        progress?.Report(new DatasetLoaded(dataset));
        var ml = new MLContext(_options.Seed);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("prepare", $"Preparing conv base {_options.ConvBase.Name}", 0));
        var graph = FeaturizerGraphCache.GetOrBuild(_options.ConvBase);
        progress?.Report(new StageFinished("prepare", 0, clock.Elapsed));
        if (_options.Precision == ConvBasePrecision.Int8)
            graph = Int8ConvBase.GetOrBuild(graph, dataset.Train, _options.Seed, _options.Int8, _options.Featurizer.Validation, progress: progress);

        using var featurizer = new ImageFeaturizer(ml, graph, _options.Featurizer);
        if (featurizer.DeviceNote is not null)
            progress.Note(featurizer.DeviceNote, warning: true);
        var train = featurizer.Featurize(dataset.Train, "featurize train", progress, _options.MirrorAugmentation, cancellationToken);
        var heldOut = new List<(DatasetSplit Split, FeaturizationResult Result)>();
        foreach (var split in new[] { DatasetSplit.Validation, DatasetSplit.Test })
            if (dataset.Get(split).Count > 0)
                heldOut.Add((split, featurizer.Featurize(dataset.Get(split), $"featurize {SplitName(split)}", progress, false, cancellationToken)));

        var unreadable = train.Unreadable.Concat(heldOut.SelectMany(h => h.Result.Unreadable)).ToList();
        foreach (var bad in unreadable)
            progress.Note($"skipped {bad.Path}: {bad.Reason}", warning: true);
        foreach (var used in train.Warnings.Concat(heldOut.SelectMany(h => h.Result.Warnings)))
            progress.Note($"used despite: {used.Path}: {used.Reason}", warning: true);
        dataset = dataset.Without(unreadable);

        var head = new LinearHeadTrainer(ml, _options.Head).Train(train.Images, dataset.Classes, graph.FeatureLength, _options.Seed, progress, cancellationToken);

        var reports = heldOut
            .Where(h => h.Result.Images.Count > 0)
            .OrderBy(h => h.Split == dataset.ReportedSplit ? 0 : 1)
            .Select(h => Evaluate(ml, head.Predictor, h.Split, h.Result.Images, dataset.Classes, graph.FeatureLength))
            .ToList();

        var (model, inputSchema) = ModelAssembler.Assemble(ml, graph, head.Predictor);
        var metadata = new ModelMetadata
        {
            Mode = "feature-extraction",
            ConvBase = new ModelMetadata.ConvBaseInfo(graph.Preset.Name, graph.Preset.Description, graph.Preset.Preprocessing.Describe(),
                graph.Preset.Pooling.ToString(), graph.FeatureLength, FeaturizerGraphCache.FileHash(graph.Preset.RequireModelFile()))
            {
                Spec = Backbones.ConvBaseSpecFile.From(graph.Preset),
            },
            Classes = dataset.Classes,
            Head = new ModelMetadata.HeadInfo("linear", _options.Head.L1, head.L2, head.CrossValidation),
            Training = new ModelMetadata.TrainingInfo(dataset.Source, dataset.SplitOrigin, _options.Seed, _options.MirrorAugmentation,
                new Dictionary<string, int>
                {
                    ["train"] = dataset.Train.Count,
                    ["validation"] = dataset.Validation.Count,
                    ["test"] = dataset.Test.Count,
                },
                dataset.Skipped.Count,
                new Dictionary<string, string>
                {
                    ["folds"] = _options.Head.Folds.ToString(CultureInfo.InvariantCulture),
                    ["l2Grid"] = string.Join(" ", _options.Head.L2Grid.Select(v => v.ToString(CultureInfo.InvariantCulture))),
                    ["validationFraction"] = _options.Dataset.ValidationFraction.ToString(CultureInfo.InvariantCulture),
                    ["batchSize"] = _options.Featurizer.BatchSize.ToString(CultureInfo.InvariantCulture),
                    ["precision"] = _options.Precision.ToString().ToLowerInvariant(),
                }),
            Metrics = reports.Select(r => new ModelMetadata.MetricsSummary(r.Split, r.Count, r.MicroAccuracy, r.MacroAccuracy, r.LogLoss)).ToList(),
        };
        return new TrainedImageClassifier(ml, model, inputSchema, dataset, reports, metadata);
    }

    internal static string SplitName(DatasetSplit split) => split switch
    {
        DatasetSplit.Train => "train",
        DatasetSplit.Validation => "validation",
        _ => "test",
    };

    private static ClassificationReport Evaluate(MLContext ml, ITransformer predictor, DatasetSplit split, IReadOnlyList<FeaturizedImage> images,
        IReadOnlyList<string> classes, int featureLength)
    {
        var probabilities = LinearHeadTrainer.Predict(ml, predictor, images.Select(i => i.Features), featureLength, classes[0]);
        return ClassificationReport.Create(SplitName(split), classes,
            images.Select((image, i) => (image.Image.Path, image.Image.Label, probabilities[i])).ToList());
    }
}

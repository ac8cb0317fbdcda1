using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Training;
using MlNetTransfer.Training.FineTuning;
using MlNetTransfer.Training.Heads;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class TrainSettings : TrainingSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Folder of labelled images (root/<label>/*.jpg, optionally under train/, val/, test/) or a CSV/TSV manifest (path,label[[,split]]).")]
    public string Data { get; init; } = "";

    [CommandOption("--features <FILE>")]
    [Description("Feature shards made by 'featurize --shard i/n' (repeat the option for each): their vectors go into the feature cache first, so those images are not featurized again.")]
    public string[] Features { get; init; } = [];
}

/// <summary>Options of <c>train</c> and <c>retrain</c>.</summary>
public class TrainingSettings : FeaturizerSettings
{
    [CommandOption("-o|--out <FILE>")]
    [Description("Model zip to write; metrics go to <name>.metrics.json beside it.")]
    [DefaultValue("model.zip")]
    public string Out { get; init; } = "model.zip";

    [CommandOption("--l2 <X>")]
    [Description("L2 weight of the dense head. Default: chosen by cross-validation on the training split.")]
    public float? L2 { get; init; }

    [CommandOption("--folds <K>")]
    [Description("Cross-validation folds for choosing L2.")]
    [DefaultValue(5)]
    public int Folds { get; init; } = 5;

    [CommandOption("-m|--mode <MODE>")]
    [Description("feature-extraction (frozen conv base, dense head) or fine-tune (also train the top block(s) of the conv base).")]
    [DefaultValue("feature-extraction")]
    public string Mode { get; init; } = "feature-extraction";

    [CommandOption("--head <HEAD>")]
    [Description("linear (softmax layer; with feature-extraction, trained by ML.NET's L-BFGS) or mlp (Dense(256, relu) -> Dropout(0.5) -> Dense).")]
    [DefaultValue("linear")]
    public string Head { get; init; } = "linear";

    [CommandOption("-u|--unfreeze <BLOCK|N>")]
    [Description("fine-tune: a block name (it and all above it train, e.g. block5, stage4) or how many blocks from the top.")]
    [DefaultValue("1")]
    public string Unfreeze { get; init; } = "1";

    [CommandOption("-e|--epochs <N>")]
    [Description("fine-tune: epochs of block + head (early stopping may end sooner).")]
    [DefaultValue(10)]
    public int Epochs { get; init; } = 10;

    [CommandOption("--head-epochs <N>")]
    [Description("TorchSharp heads: epochs of the head alone on the frozen base (every cached view once per epoch).")]
    [DefaultValue(5)]
    public int HeadEpochs { get; init; } = 5;

    [CommandOption("--lr <X>")]
    [Description("TorchSharp heads: peak learning rate of the head; the unfrozen block gets lr x --block-lr-factor.")]
    [DefaultValue(2e-3)]
    public double LearningRate { get; init; } = 2e-3;

    [CommandOption("--block-lr-factor <X>")]
    [Description("fine-tune: the unfrozen block's learning rate relative to --lr (discriminative learning rates).")]
    [DefaultValue(0.5)]
    public double BlockLearningRateFactor { get; init; } = 0.5;

    [CommandOption("--augment <K>")]
    [Description("TorchSharp heads: augmented views (random resized crop + flip) cached per training image, besides the plain one.")]
    [DefaultValue(4)]
    public int Augment { get; init; } = 4;

    [CommandOption("--patience <N>")]
    [Description("fine-tune: stop after N epochs without a better validation loss; the best epoch is kept.")]
    [DefaultValue(5)]
    public int Patience { get; init; } = 5;

    [CommandOption("--optimizer <NAME>")]
    [Description("TorchSharp heads: sgd (momentum 0.9, weight decay 1e-4) or adamw (weight decay 1e-2).")]
    [DefaultValue("sgd")]
    public string Optimizer { get; init; } = "sgd";

    [CommandOption("--schedule <NAME>")]
    [Description("TorchSharp heads: cosine, or one-cycle (warmup, then cosine).")]
    [DefaultValue("cosine")]
    public string Schedule { get; init; } = "cosine";

    [CommandOption("--train-batchnorm")]
    [Description("fine-tune: also update BatchNorm statistics of the unfrozen block (default: they stay in inference mode).")]
    public bool TrainBatchNorm { get; init; }

    [CommandOption("--resume")]
    [Description("TorchSharp heads / fine-tune: continue an interrupted run from its last epoch checkpoint (<out>.checkpoint/; same data, options and threads).")]
    public bool Resume { get; init; }

    [CommandOption("--report-dir <DIR>")]
    [Description("Where the HTML report and its plots go. Default: report/ beside the model.")]
    public string? ReportDir { get; init; }

    public override ValidationResult Validate()
    {
        if (Folds < 2) return ValidationResult.Error("--folds must be at least 2");
        if (L2 is < 0) return ValidationResult.Error("--l2 must be >= 0");
        if (Mode is not ("feature-extraction" or "fine-tune")) return ValidationResult.Error("--mode must be feature-extraction or fine-tune");
        if (Head is not ("linear" or "mlp")) return ValidationResult.Error("--head must be linear or mlp");
        if (Optimizer is not ("adamw" or "sgd")) return ValidationResult.Error("--optimizer must be adamw or sgd");
        if (Schedule is not ("one-cycle" or "cosine")) return ValidationResult.Error("--schedule must be one-cycle or cosine");
        if (Epochs < 0 || HeadEpochs < 0 || Augment < 0 || Patience < 1) return ValidationResult.Error("--epochs, --head-epochs and --augment must be >= 0, --patience >= 1");
        if (LearningRate is <= 0 or > 1) return ValidationResult.Error("--lr must be in (0, 1]");
        return base.Validate();
    }
}

/// <summary><c>train</c>: feature extraction or fine-tuning on a conv base; model zip + metrics.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var preset = ConvBaseRegistry.Resolve(settings.Base, settings.BaseModel);
        var datasetOptions = settings.DatasetOptions();
        var dataset = ImageDatasetLoader.Load(settings.Data, datasetOptions);
        if (!settings.Quiet)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);

        var progress = new ConsoleProgress(console, settings.Quiet);
        using var trained = progress.Run(() => Train(settings, preset, datasetOptions, dataset, progress, cancellationToken));
        return Finish(console, settings, trained, dataset.Skipped.Count, preset.Name);
    }

    private static TrainedImageClassifier Train(TrainSettings settings, ConvBasePreset preset, DatasetOptions datasetOptions, ImageDataset dataset,
        ConsoleProgress progress, CancellationToken cancellationToken)
    {
        var featurizer = settings.FeaturizerOptions();
        ImportShards(settings, preset, dataset, progress);
        if (settings.Mode == "feature-extraction" && settings.Head == "linear")
        {
            var options = new TransferLearnerOptions
            {
                ConvBase = preset,
                Seed = settings.Seed,
                Dataset = datasetOptions,
                Head = new LinearHeadOptions { L2 = settings.L2, Folds = settings.Folds },
                MirrorAugmentation = !settings.NoMirror,
                Featurizer = featurizer,
                Precision = settings.ConvBasePrecision,
            };
            return new TransferLearner(options).Train(dataset, progress, cancellationToken);
        }
        return new FineTuneLearner(FineTuneOptionsOf(settings, preset, datasetOptions, featurizer, settings.Mode == "fine-tune", settings.Head, settings.Unfreeze))
            .Train(dataset, progress, cancellationToken);
    }

    /// <summary>Shards made elsewhere go into this machine's feature cache, keyed by image content.</summary>
    private static void ImportShards(TrainSettings settings, ConvBasePreset preset, ImageDataset dataset, ConsoleProgress progress)
    {
        if (settings.Features.Length == 0)
            return;
        if (settings.NoCache)
            throw new DatasetException("--features needs the feature cache: drop --no-cache.");
        var graph = FeaturizerGraphCache.GetOrBuild(preset);
        if (settings.ConvBasePrecision == ConvBasePrecision.Int8)
            graph = Int8ConvBase.GetOrBuild(graph, dataset.Train, settings.Seed, validation: settings.Validation, progress: progress);
        var cache = FeatureCache.For(graph);
        int imported = 0;
        foreach (var file in settings.Features)
            imported += FeatureShard.Load(file).ImportInto(cache, file);
        progress.Report(new Progress.ProgressNote($"imported {imported} feature vectors from {settings.Features.Length} shard(s) into {cache.Folder}"));
    }

    internal static FineTuneLearnerOptions FineTuneOptionsOf(TrainingSettings settings, ConvBasePreset preset, DatasetOptions datasetOptions, FeaturizerOptions featurizer,
        bool fineTune, string head, string unfreeze) => settings.ConvBasePrecision == ConvBasePrecision.Int8
        ? throw new DatasetException("--precision int8 is for feature extraction with the linear head: fine-tuning, retrain, lr-find and the mlp head train on the fp32 base.")
        : new()
    {
        ConvBase = preset,
        Seed = settings.Seed,
        Dataset = datasetOptions,
        FineTune = fineTune,
        Featurizer = featurizer,
        // Every epoch is checkpointed beside the output; a finished run removes it (Finish).
        CheckpointFolder = CheckpointFolderFor(settings.Out),
        Resume = settings.Resume,
        Recipe = new FineTuneOptions
        {
            Unfreeze = unfreeze,
            Head = head == "mlp" ? HeadKind.Mlp : HeadKind.Linear,
            Epochs = settings.Epochs,
            HeadEpochs = settings.HeadEpochs,
            LearningRate = settings.LearningRate,
            BlockLearningRateFactor = settings.BlockLearningRateFactor,
            AugmentedViews = settings.Augment,
            Patience = settings.Patience,
            Optimizer = settings.Optimizer == "sgd" ? OptimizerKind.Sgd : OptimizerKind.AdamW,
            WeightDecay = settings.Optimizer == "sgd" ? 1e-4 : 1e-2,
            Schedule = settings.Schedule == "cosine" ? ScheduleKind.Cosine : ScheduleKind.OneCycle,
            TrainBatchNorm = settings.TrainBatchNorm,
            Threads = settings.Threads,
        },
    };

    internal static string CheckpointFolderFor(string modelPath) => Path.ChangeExtension(Path.GetFullPath(modelPath), ".checkpoint");

    /// <summary>Saves the model and prints what was learned.</summary>
    internal static int Finish(IAnsiConsole console, TrainingSettings settings, TrainedImageClassifier trained, int skippedBefore, string baseName)
    {
        var metricsPath = trained.Save(settings.Out);
        if (Directory.Exists(CheckpointFolderFor(settings.Out)) && trained.Metadata.FineTune is not { StoppedByUser: true })
            Directory.Delete(CheckpointFolderFor(settings.Out), recursive: true);
        var dataset = trained.Dataset;
        var reportPath = Reporting.TrainingReportWriter.Write(settings.ReportDir ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(settings.Out))!, "report"),
            settings.Out, trained.Metadata, trained.Reports, dataset.Skipped);
        var samplePath = Reporting.ConsumptionSample.Write(settings.Out, trained.Classes);

        if (!settings.Quiet)
        {
            if (dataset.Skipped.Count > skippedBefore)
                ReportRenderer.Skipped(console, dataset.Skipped.Skip(skippedBefore).ToList(), settings.Verbose);
            ReportRenderer.CrossValidation(console, trained.Metadata.Head.CrossValidation, trained.Metadata.Head.L2);
            ReportRenderer.Metrics(console, trained.Reports);
        }
        var headline = trained.Reports.FirstOrDefault();
        var accuracy = headline is null ? "" : FormattableString.Invariant($"; {headline.Split} accuracy {headline.MicroAccuracy:F4}");
        console.MarkupLine(FormattableString.Invariant(
            $"Saved [bold]{Markup.Escape(Path.GetFullPath(settings.Out))}[/] ({trained.Metadata.Mode}, {trained.Metadata.Head.Kind} head, {trained.Classes.Count} classes, base {Markup.Escape(baseName)}){accuracy}"));
        if (trained.Metadata.FineTune is { StoppedByUser: true })
            console.MarkupLine($"[yellow]Training was stopped by the user; {Markup.Escape(Path.GetFullPath(settings.Out))} holds the best epoch so far ({Markup.Escape(trained.Metadata.FineTune.BestEpoch ?? "-")}).[/]");
        console.MarkupLine($"Metrics: {Markup.Escape(metricsPath)}");
        console.MarkupLine($"Report: {Markup.Escape(reportPath)}");
        console.MarkupLine($"How to use it in an app: {Markup.Escape(samplePath)}");
        return 0;
    }
}

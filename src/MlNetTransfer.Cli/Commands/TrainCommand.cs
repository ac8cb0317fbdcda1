using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class TrainSettings : GlobalSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Folder of labelled images (root/<label>/*.jpg, optionally under train/, val/, test/) or a CSV/TSV manifest (path,label[[,split]]).")]
    public string Data { get; init; } = "";

    [CommandOption("-b|--base <BASE>")]
    [Description("Conv base: resnet18 (embedded default), vgg16-keras, vgg16-torchvision, or a path to any .onnx with a spec JSON beside it.")]
    [DefaultValue(ConvBaseRegistry.DefaultName)]
    public string Base { get; init; } = ConvBaseRegistry.DefaultName;

    [CommandOption("--base-model <FILE>")]
    [Description("The exported ONNX file for a preset that is not embedded (vgg16-keras, vgg16-torchvision); see onnx/README.md.")]
    public string? BaseModel { get; init; }

    [CommandOption("-o|--out <FILE>")]
    [Description("Model zip to write; metrics go to <name>.metrics.json beside it.")]
    [DefaultValue("model.zip")]
    public string Out { get; init; } = "model.zip";

    [CommandOption("-s|--seed <N>")]
    [Description("Seed of the data split, cross-validation folds and trainer: same seed, data and threads give the same model.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--l2 <X>")]
    [Description("L2 weight of the dense head. Default: chosen by cross-validation on the training split.")]
    public float? L2 { get; init; }

    [CommandOption("--folds <K>")]
    [Description("Cross-validation folds for choosing L2.")]
    [DefaultValue(5)]
    public int Folds { get; init; } = 5;

    [CommandOption("--validation-fraction <F>")]
    [Description("Share of each class held out for validation when the data has no split folders.")]
    [DefaultValue(0.2)]
    public double ValidationFraction { get; init; } = 0.2;

    [CommandOption("--no-mirror")]
    [Description("Do not add left-right mirrored copies of the training images.")]
    public bool NoMirror { get; init; }

    [CommandOption("--threads <N>")]
    [Description("ONNX Runtime threads. Default: all cores.")]
    public int? Threads { get; init; }

    [CommandOption("--batch-size <N>")]
    [Description("Images per ONNX Runtime call while featurizing.")]
    [DefaultValue(16)]
    public int BatchSize { get; init; } = 16;

    public override ValidationResult Validate()
    {
        if (Folds < 2) return ValidationResult.Error("--folds must be at least 2");
        if (ValidationFraction is <= 0 or >= 1) return ValidationResult.Error("--validation-fraction must be between 0 and 1");
        if (L2 is < 0) return ValidationResult.Error("--l2 must be >= 0");
        if (BatchSize < 1) return ValidationResult.Error("--batch-size must be at least 1");
        if (Threads is < 1) return ValidationResult.Error("--threads must be at least 1");
        return ValidationResult.Success();
    }
}

/// <summary><c>train</c>: feature extraction on a conv base, dense head, model zip + metrics.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var preset = ConvBaseRegistry.Resolve(settings.Base, settings.BaseModel);
        var options = new TransferLearnerOptions
        {
            ConvBase = preset,
            Seed = settings.Seed,
            Dataset = new DatasetOptions { Seed = settings.Seed, ValidationFraction = settings.ValidationFraction },
            Head = new LinearHeadOptions { L2 = settings.L2, Folds = settings.Folds },
            MirrorAugmentation = !settings.NoMirror,
            Featurizer = new FeaturizerOptions { BatchSize = settings.BatchSize, Threads = settings.Threads },
        };

        var dataset = ImageDatasetLoader.Load(settings.Data, options.Dataset);
        if (!settings.Quiet)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);

        var progress = new ConsoleProgress(console, settings.Quiet);
        using var trained = progress.Run(() => new TransferLearner(options).Train(dataset, progress, cancellationToken));
        var metricsPath = trained.Save(settings.Out);

        if (!settings.Quiet)
        {
            if (trained.Dataset.Skipped.Count > dataset.Skipped.Count)
                ReportRenderer.Skipped(console, trained.Dataset.Skipped.Skip(dataset.Skipped.Count).ToList(), settings.Verbose);
            ReportRenderer.CrossValidation(console, trained.Metadata.Head.CrossValidation, trained.Metadata.Head.L2);
            ReportRenderer.Metrics(console, trained.Reports);
        }
        var headline = trained.Reports.FirstOrDefault();
        var accuracy = headline is null ? "" : FormattableString.Invariant($"; {headline.Split} accuracy {headline.MicroAccuracy:F4}");
        console.MarkupLine(FormattableString.Invariant(
            $"Saved [bold]{Markup.Escape(Path.GetFullPath(settings.Out))}[/] ({trained.Classes.Count} classes, base {Markup.Escape(preset.Name)}, L2 {trained.Metadata.Head.L2:G4}){accuracy}"));
        console.MarkupLine($"Metrics: {Markup.Escape(metricsPath)}");
        return 0;
    }
}

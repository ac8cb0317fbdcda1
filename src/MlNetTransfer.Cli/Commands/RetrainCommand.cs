using System.ComponentModel;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class RetrainSettings : TrainingSettings
{
    [CommandArgument(0, "<model>")]
    [Description("A model zip made by train (fine-tune, or a TorchSharp head) to continue from.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<data>")]
    [Description("New or more labelled images, with the model's classes.")]
    public string Data { get; init; } = "";
}

/// <summary>
/// <c>retrain</c>: continued training of a saved model on new or more data, starting from its tuned block and head
/// (warm start), which ML.NET's own image trainer cannot do.
/// </summary>
public sealed class RetrainCommand : Command<RetrainSettings>
{
    public override int Execute(CommandContext context, RetrainSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var metadata = ModelArchive.ReadMetadata(settings.Model)
                       ?? throw new ModelLoadException($"'{settings.Model}' was not made by MlNetTransfer; it cannot be trained further.");
        if (metadata.FineTune is null)
            throw new ModelLoadException($"'{settings.Model}' has an ML.NET L-BFGS head (feature extraction, linear): train it again with train, or make a TorchSharp model (--mode fine-tune or --head mlp) to continue it later.");
        var datasetOptions = settings.DatasetOptions();
        var dataset = ImageDatasetLoader.Load(settings.Data, datasetOptions);
        if (!settings.Quiet)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);
        // The saved model decides mode, head and unfrozen blocks; the recipe (epochs, lr, ...) comes from the command line.
        bool fineTune = metadata.FineTune.Unfreeze.Length > 0;
        var options = TrainCommand.FineTuneOptionsOf(settings, ConvBaseRegistry.Get(ConvBaseRegistry.DefaultName), datasetOptions,
            settings.FeaturizerOptions(), fineTune, metadata.Head.Kind,
            fineTune ? metadata.FineTune.Unfreeze : settings.Unfreeze);
        var progress = new ConsoleProgress(console, settings.Quiet);
        using var trained = progress.Run(() => new FineTuneLearner(options).Retrain(settings.Model, dataset, progress, cancellationToken));
        return TrainCommand.Finish(console, settings, trained, dataset.Skipped.Count, metadata.ConvBase.Name);
    }
}

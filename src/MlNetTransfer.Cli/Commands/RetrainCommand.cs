using System.ComponentModel;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Training;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class RetrainSettings : TrainingSettings
{
    [CommandArgument(0, "<model>")]
    [Description("A model zip made by train (fine-tuned, or with a TorchSharp head) to continue from; its conv base, mode, head and unfrozen blocks are kept.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<data>")]
    [Description("New or more labelled images, with the model's classes.")]
    public string Data { get; init; } = "";

    internal override TrainerTask Task => TrainerTask.Retrain;
}

/// <summary>
/// <c>retrain</c>: flags -> <see cref="ImageClassifierTrainer.Retrain(string, ImageDataset, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>,
/// continued training from the model's tuned weights, which ML.NET's own image trainer cannot do.
/// </summary>
public sealed class RetrainCommand : Command<RetrainSettings>
{
    public override int Execute(CommandContext context, RetrainSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var options = settings.Options();
        var dataset = ImageDatasetLoader.Load(settings.Data, options.Data);
        if (!settings.Quiet)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);
        var progress = new ConsoleProgress(console, settings.Quiet);
        using var trained = progress.Run(() => new ImageClassifierTrainer(options).Retrain(settings.Model, dataset, progress, cancellationToken));
        // Continued training never ships a worse model unasked: it is compared with the model it continued.
        return TrainingOutput.Write(console, settings, trained, dataset.Skipped.Count, settings.Model);
    }
}

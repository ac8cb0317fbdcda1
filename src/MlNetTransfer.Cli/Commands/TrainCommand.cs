using System.ComponentModel;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Training;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class TrainSettings : TrainingSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Folder of labelled images (root/<label>/*.jpg, optionally under train/, val/, test/) or a CSV/TSV manifest (path,label[[,split]]).")]
    public string Data { get; init; } = "";

    internal override TrainerTask Task => TrainerTask.Train;
}

/// <summary><c>train</c>: flags -> <see cref="ImageClassifierTrainer.Train(ImageDataset, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>; renders progress and results.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var options = settings.Options();
        var dataset = ImageDatasetLoader.Load(settings.Data, options.Data);
        if (!settings.Quiet)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);
        var progress = new ConsoleProgress(console, settings.Quiet);
        using var trained = progress.Run(() => new ImageClassifierTrainer(options).Train(dataset, progress, cancellationToken));
        return TrainingOutput.Write(console, settings, trained, dataset.Skipped.Count);
    }
}

using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Reporting;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class LrFindSettings : RecipeSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Labelled images, as for train.")]
    public string Data { get; init; } = "";

    [CommandOption("--start <LR>")]
    [Description("Smallest learning rate of the sweep.")]
    [DefaultValue(1e-6)]
    public double Start { get; init; } = 1e-6;

    [CommandOption("--end <LR>")]
    [Description("Largest learning rate of the sweep (it stops earlier when the loss diverges).")]
    [DefaultValue(10.0)]
    public double End { get; init; } = 10;

    [CommandOption("--steps <N>")]
    [Description("Mini-batches in the sweep.")]
    [DefaultValue(100)]
    public int Steps { get; init; } = 100;

    [CommandOption("--plot <FILE>")]
    [Description("Where to save the loss-vs-learning-rate plot (PNG).")]
    [DefaultValue("lr-find.png")]
    public string Plot { get; init; } = "lr-find.png";

    internal override TrainerTask Task => TrainerTask.FindLearningRate;

    internal LearningRateRange Range => new() { Start = Start, End = End, Steps = Steps };

    internal override string? MoreErrors()
    {
        try
        {
            Range.Validate();
            return null;
        }
        catch (TrainingOptionsException e)
        {
            return OptionFlags.Translate(e.Message);
        }
    }
}

/// <summary>
/// <c>lr-find</c>: flags -> <see cref="ImageClassifierTrainer.FindLearningRate(ImageDataset, LearningRateRange?, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>
/// (fastai's range test for the TorchSharp head or fine-tuning); prints the suggestion and saves the plot.
/// </summary>
public sealed class LrFindCommand : Command<LrFindSettings>
{
    public override int Execute(CommandContext context, LrFindSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var options = settings.Options();
        var dataset = ImageDatasetLoader.Load(settings.Data, options.Data);
        var progress = new ConsoleProgress(console, settings.Quiet);
        var sweep = progress.Run(() => new ImageClassifierTrainer(options).FindLearningRate(dataset, settings.Range, progress, cancellationToken));

        ReportCharts.SavePng(ReportCharts.LearningRate(sweep.Points.Select(p => (p.LearningRate, p.Loss, p.SmoothedLoss)).ToList(), sweep.Suggested), settings.Plot);
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"Suggested learning rate: [bold]{sweep.Suggested:0.0e0}[/] (fastai's valley: well inside the stretch where the smoothed loss falls); the loss was lowest at {sweep.MinimumLossRate:0.0e0}{(sweep.Diverged ? $", and diverged by {sweep.Points[^1].LearningRate:0.0e0}" : "")}."));
        // The range test ran the head it says; without --head that is the softmax one (train's default there would be lbfgs).
        var head = settings.Head is { } given ? $" --head {given}" : options.Mode == TrainingMode.FeatureExtraction ? " --head torch-softmax" : "";
        console.MarkupLine($"Use it with: train {SafeMarkup.Escape(settings.Data)} --mode {settings.Mode}{SafeMarkup.Escape(head)} --lr {sweep.Suggested.ToString("0.0e0", CultureInfo.InvariantCulture)}");
        console.MarkupLine($"Plot: {SafeMarkup.Escape(Path.GetFullPath(settings.Plot))}");
        return 0;
    }
}

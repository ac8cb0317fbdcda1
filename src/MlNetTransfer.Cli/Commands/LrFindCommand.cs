using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Reporting;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class LrFindSettings : TrainingSettings
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
}

/// <summary><c>lr-find</c>: fastai's learning-rate range test for the chosen recipe; prints a suggestion and saves the plot.</summary>
public sealed class LrFindCommand : Command<LrFindSettings>
{
    public override int Execute(CommandContext context, LrFindSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Start <= 0 || settings.End <= settings.Start || settings.Steps < 10)
            throw new ArgumentException("--start must be > 0, --end > --start and --steps >= 10");
        var console = ConsoleFactory.Create(settings);
        var preset = ConvBaseRegistry.Resolve(settings.Base, settings.BaseModel);
        var datasetOptions = settings.DatasetOptions();
        var dataset = ImageDatasetLoader.Load(settings.Data, datasetOptions);
        var options = TrainCommand.FineTuneOptionsOf(settings, preset, datasetOptions, settings.FeaturizerOptions(),
            settings.Mode == "fine-tune", settings.Head, settings.Unfreeze);
        var progress = new ConsoleProgress(console, settings.Quiet);
        var sweep = progress.Run(() => new FineTuneLearner(options).FindLearningRate(dataset, settings.Start, settings.End, settings.Steps, progress, cancellationToken));

        ReportCharts.SavePng(ReportCharts.LearningRate(sweep.Points.Select(p => (p.LearningRate, p.Loss, p.SmoothedLoss)).ToList(), sweep.Suggested), settings.Plot);
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"Suggested learning rate: [bold]{sweep.Suggested:0.0e0}[/] (steepest descent of the smoothed loss); the loss was lowest at {sweep.MinimumLossRate:0.0e0}{(sweep.Diverged ? $", and diverged by {sweep.Points[^1].LearningRate:0.0e0}" : "")}."));
        console.MarkupLine($"Use it with: train {Markup.Escape(settings.Data)} --mode {settings.Mode} --head {settings.Head} --lr {sweep.Suggested.ToString("0.0e0", CultureInfo.InvariantCulture)}");
        console.MarkupLine($"Plot: {Markup.Escape(Path.GetFullPath(settings.Plot))}");
        return 0;
    }
}

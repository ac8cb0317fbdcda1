using System.ComponentModel;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Training;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class TrainSettings : TrainingSettings
{
    [CommandOption("--compare-to <MODEL>")]
    [Description("A model zip this one would replace: both are scored on the new model's held-out images, and the new one is written only when it is not worse beyond the noise (McNemar's exact test; the log-loss's paired bootstrap), unless --force.")]
    public string? CompareTo { get; init; }

    [CommandArgument(0, "<data>")]
    [Description("Folder of labelled images (root/<label>/*.jpg, optionally under train/, val/, test/) or a CSV/TSV manifest (path,label[[,split]]).")]
    public string Data { get; init; } = "";

    [CommandOption("--time-budget <TIME>")]
    [Description("mode auto: wall-clock time for the whole search and the final refit (e.g. 90s, 3m, 1h30m). A candidate that would not fit is skipped, one still running when it runs out is stopped; the run says which.")]
    [DefaultValue("60m")]
    public string TimeBudget { get; init; } = "60m";

    [CommandOption("--candidates <LIST>")]
    [Description("mode auto: the candidates tried, cheapest first, comma-separated: lbfgs, mlp, fine-tune-1 (the top block), fine-tune-2 (the top two blocks).")]
    [DefaultValue("lbfgs,mlp,fine-tune-1,fine-tune-2")]
    public string Candidates { get; init; } = "lbfgs,mlp,fine-tune-1,fine-tune-2";

    [CommandOption("--drop-duplicates")]
    [Description("Use each near-duplicate once, as exact copies always are: a copy of a training image is left out of validation/test, a copy under another class after the first; each is listed among the skipped files with the reason. Default: they are kept and reported (console, report, metrics JSON).")]
    public bool DropDuplicates { get; init; }

    [CommandOption("--near-duplicate-threshold <X>")]
    [Description("The cosine of two images' L2-normalised pooled conv-base features at or above which the data checks call them near-duplicates (measured in docs/console.md).")]
    [DefaultValue(0.92)]
    public double NearDuplicateThreshold { get; init; } = 0.92;

    internal override TrainerTask Task => TrainerTask.Train;

    internal override string DefaultMode => "auto";

    private bool AutoFlagsGiven => TimeBudget != "60m" || Candidates != "lbfgs,mlp,fine-tune-1,fine-tune-2";

    internal override ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o)
    {
        o = base.Apply(o) with { DropDuplicates = DropDuplicates, NearDuplicateThreshold = NearDuplicateThreshold };
        // The search's flags reach the options only when the mode is auto (or when given, so that the library names them as doing nothing).
        if (o.Mode != TrainingMode.Auto && !AutoFlagsGiven)
            return o;
        return o with
        {
            ModeSearch = new ModeSearchOptions
            {
                TimeBudget = OptionFlags.ParseDuration(TimeBudget) ?? TimeSpan.Zero,
                Candidates = Candidates.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(OptionFlags.Candidates.Parse).ToList(),
            },
        };
    }

    internal override string? WordErrors()
    {
        if (OptionFlags.ParseDuration(TimeBudget) is null)
            return $"--time-budget '{TimeBudget}' is not a duration: give it as 90s, 3m, 1h30m or 2h";
        foreach (var word in Candidates.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (!OptionFlags.Candidates.TryParse(word, out _))
                return $"--candidates: '{word}' is not one of {string.Join(", ", OptionFlags.Candidates.Words)}";
        return base.WordErrors();
    }
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
        return TrainingOutput.Write(console, settings, trained, dataset.Skipped.Count, settings.CompareTo);
    }
}

using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class LearningCurveSettings : BaseSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Labelled images, as for train. Scored on test/, else val/, else a seeded 20 % of the training images set aside first.")]
    public string Data { get; init; } = "";

    [CommandOption("--sizes <LIST>")]
    [Description("Training images per class of the subsamples (comma-separated); sizes at or above the smallest class are dropped; every training image is always the last point.")]
    [DefaultValue("1,2,5,10,20,50")]
    public string Sizes { get; init; } = "1,2,5,10,20,50";

    [CommandOption("--repeats <N>")]
    [Description("Seeded subsamples per size.")]
    [DefaultValue(3)]
    public int Repeats { get; init; } = 3;

    [CommandOption("--methods <LIST>")]
    [Description("scratch (a small CNN from random weights, no transfer), fe (feature extraction, L-BFGS head), ft (fine-tuning the top block), comma-separated.")]
    [DefaultValue("scratch,fe,ft")]
    public string Methods { get; init; } = "scratch,fe,ft";

    [CommandOption("--time-budget <TIME>")]
    [Description("Wall-clock time for the whole curve (e.g. 20m); points that would start after it are skipped and listed.")]
    [DefaultValue("60m")]
    public string TimeBudget { get; init; } = "60m";

    [CommandOption("-o|--out <DIR>")]
    [Description("Folder of learning-curve.csv, learning-curve.png and learning-curve.html.")]
    [DefaultValue("learning-curve")]
    public string Out { get; init; } = "learning-curve";

    internal override TrainerTask Task => TrainerTask.Train;

    private static readonly Dictionary<string, LearningCurveMethod> MethodWords = new(StringComparer.Ordinal)
    {
        ["scratch"] = LearningCurveMethod.FromScratch, ["fe"] = LearningCurveMethod.FeatureExtraction, ["ft"] = LearningCurveMethod.FineTuning,
    };

    internal LearningCurveOptions Curve() => new()
    {
        ImagesPerClass = Sizes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList(),
        Repeats = Repeats,
        Methods = Methods.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(w => MethodWords[w]).ToList(),
        TimeBudget = OptionFlags.ParseDuration(TimeBudget) ?? TimeSpan.Zero,
    };

    internal override string? WordErrors()
    {
        foreach (var s in Sizes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                return $"--sizes: '{s}' is not a whole number of images per class";
        foreach (var w in Methods.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (!MethodWords.ContainsKey(w))
                return $"--methods: '{w}' is not one of scratch, fe, ft";
        if (OptionFlags.ParseDuration(TimeBudget) is null)
            return $"--time-budget '{TimeBudget}' is not a duration: give it as 90s, 3m, 1h30m or 2h";
        return base.WordErrors();
    }

    internal override string? MoreErrors()
    {
        try
        {
            Curve().Validate();
            return null;
        }
        catch (TrainingOptionsException e)
        {
            return e.Message.Replace("Curve.ImagesPerClass", "--sizes").Replace("Curve.Repeats", "--repeats").Replace("Curve.Methods", "--methods").Replace("Curve.TimeBudget", "--time-budget");
        }
    }
}

/// <summary><c>learning-curve</c>: flags -> <see cref="ImageClassifierTrainer.LearningCurve"/>; prints the table and the projections, writes the CSV, the plot and the page.</summary>
public sealed class LearningCurveCommand : Command<LearningCurveSettings>
{
    public override int Execute(CommandContext context, LearningCurveSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var progress = new ConsoleProgress(console, settings.Quiet);
        var result = progress.Run(() => new ImageClassifierTrainer(settings.Options()).LearningCurve(settings.Data, settings.Curve(), progress, cancellationToken));
        var page = Reporting.LearningCurveWriter.Write(settings.Out, result);
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        var methods = result.Points.Select(p => p.Method).Distinct().ToList();
        var table = new Table().Title($"[bold]Learning curve[/] (accuracy on {result.EvaluationImages} {SafeMarkup.Escape(result.EvaluatedOn)}; mean and range over the subsamples)")
            .AddColumn(new TableColumn("images per class").RightAligned());
        foreach (var m in methods)
            table.AddColumn(new TableColumn(LearningCurveResult.Words(m)).RightAligned());
        foreach (var size in result.Points.GroupBy(p => (p.ImagesPerClass, p.AllImages)).OrderBy(g => g.Key.ImagesPerClass))
            table.AddRow(new[] { size.Key.AllImages ? string.Create(CultureInfo.InvariantCulture, $"all ({size.Key.ImagesPerClass:0.#})") : size.Key.ImagesPerClass.ToString(CultureInfo.InvariantCulture) }
                .Concat(methods.Select(m => size.Where(p => p.Method == m).ToList() is { Count: > 0 } at ? $"{F(at.Average(p => p.Accuracy))} ({F(at.Min(p => p.Accuracy))}-{F(at.Max(p => p.Accuracy))})" : "-")).ToArray());
        console.Write(table);
        foreach (var fit in result.Fits)
            console.MarkupLine(SafeMarkup.Escape(fit.Sentence));
        foreach (var skipped in result.Skipped)
            console.MarkupLine($"[yellow]skipped[/] {SafeMarkup.Escape(skipped)}");
        console.MarkupLine($"Curve: {SafeMarkup.Escape(Path.GetFullPath(page))} (and learning-curve.png, learning-curve.csv beside it)");
        return 0;
    }
}

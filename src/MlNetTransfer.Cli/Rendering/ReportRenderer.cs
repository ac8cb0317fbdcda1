using System.Globalization;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Training;
using Spectre.Console;

namespace MlNetTransfer.Cli.Rendering;

/// <summary>Tables for the data summary, metrics, per-class scores and the confusion matrix.</summary>
public static class ReportRenderer
{
    private static string F(double v, string format = "F4") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A Wilson 95 % interval as the tables show it: 0.908-0.978.</summary>
    internal static string Interval((double Low, double High) i) => $"{F(i.Low, "F3")}-{F(i.High, "F3")}";

    public static void Dataset(IAnsiConsole console, ImageDataset dataset, bool verbose)
    {
        var splits = new[] { DatasetSplit.Train, DatasetSplit.Validation, DatasetSplit.Test }.Where(s => dataset.Get(s).Count > 0).ToList();
        console.MarkupLine($"[bold]Data[/]: {SafeMarkup.Escape(dataset.Source)} ({SafeMarkup.Escape(dataset.SplitOrigin)}), {dataset.Classes.Count} classes");
        var table = new Table().AddColumn("class");
        foreach (var s in splits)
            table.AddColumn(new TableColumn(s.ToString().ToLowerInvariant()).RightAligned());
        var counts = splits.ToDictionary(s => s, dataset.Counts);
        foreach (var c in dataset.Classes)
            table.AddRow(new[] { SafeMarkup.Escape(c) }.Concat(splits.Select(s => counts[s][c].ToString(CultureInfo.InvariantCulture))).ToArray());
        table.AddRow(new[] { "[bold]total[/]" }.Concat(splits.Select(s => $"[bold]{dataset.Get(s).Count}[/]")).ToArray());
        console.Write(table);
        Skipped(console, dataset.Skipped, verbose);
    }

    public static void Skipped(IAnsiConsole console, IReadOnlyList<SkippedFile> skipped, bool verbose)
    {
        if (skipped.Count == 0)
            return;
        console.MarkupLine($"[yellow]Skipped {skipped.Count} file(s):[/]");
        int shown = verbose ? skipped.Count : Math.Min(skipped.Count, 20);
        foreach (var s in skipped.Take(shown))
            console.MarkupLine($"  [yellow]-[/] {SafeMarkup.Escape(s.Path)}: {SafeMarkup.Escape(Commands.OptionFlags.Translate(s.Reason))}");
        if (shown < skipped.Count)
            console.MarkupLine($"  ... and {skipped.Count - shown} more (--verbose lists all; the metrics JSON has every one)");
    }

    public static void CrossValidation(IAnsiConsole console, IReadOnlyList<CrossValidationResult> rows, float? chosen)
    {
        if (rows.Count == 0)
            return;
        var table = new Table().Title("[bold]Head regularization[/] (cross-validation on the training images)")
            .AddColumn(new TableColumn("L2").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn(new TableColumn("log-loss").RightAligned());
        foreach (var r in rows)
        {
            var mark = r.L2 == chosen ? "[bold green]" : "";
            var end = r.L2 == chosen ? "[/]" : "";
            table.AddRow($"{mark}{F(r.L2, "G4")}{end}", $"{mark}{F(r.Accuracy)}{end}", $"{mark}{F(r.LogLoss)}{end}");
        }
        console.Write(table);
    }

    /// <summary>Mode auto: every candidate on the choosing images, and the decision in one sentence.</summary>
    public static void ModeSelection(IAnsiConsole console, Inference.ModelMetadata.ModeSelectionInfo? selection)
    {
        if (selection is null)
            return;
        var table = new Table().Title($"[bold]Candidates[/] (scored on {selection.Images} {SafeMarkup.Escape(selection.ChosenOn)}; no reported figure comes from them)")
            .AddColumn("candidate").AddColumn("blocks").AddColumn("learning rate").AddColumn(new TableColumn("accuracy (95 % interval)").RightAligned())
            .AddColumn(new TableColumn("log-loss").RightAligned()).AddColumn(new TableColumn("log-loss gain (95 %)").RightAligned())
            .AddColumn(new TableColumn("McNemar p").RightAligned()).AddColumn(new TableColumn("time").RightAligned()).AddColumn("status");
        foreach (var r in selection.Candidates)
        {
            var (mark, end) = r.Chosen ? ("[bold green]", "[/]") : ("", "");
            string Cell(string text) => $"{mark}{SafeMarkup.Escape(text)}{end}";
            table.AddRow(Cell(r.Candidate), Cell(r.Blocks), Cell(r.LearningRate ?? "-"),
                Cell(r.Accuracy is { } a ? $"{F(a)} ({Interval((r.AccuracyLow ?? 0, r.AccuracyHigh ?? 0))})" : "-"),
                Cell(r.LogLoss is { } l ? F(l) : "-"),
                Cell(r.LogLossGain is { } g ? $"{F(g, "+0.000;-0.000")} ({F(r.LogLossGainLow ?? 0, "+0.000;-0.000")} to {F(r.LogLossGainHigh ?? 0, "+0.000;-0.000")})" : "-"),
                Cell(r.McNemarP is { } p ? F(p, "G2") : "-"), Cell(Training.ModeSearch.Format(TimeSpan.FromSeconds(r.Seconds))), Cell(r.Status));
        }
        console.Write(table);
        console.MarkupLine($"[bold]Decision[/]: {SafeMarkup.Escape(selection.Decision)}");
    }

    public static void Metrics(IAnsiConsole console, IReadOnlyList<ClassificationReport> reports)
    {
        bool calibrated = reports.Any(r => r.Uncalibrated is not null);
        var summary = new Table().Title("[bold]Metrics[/]").AddColumn("split").AddColumn(new TableColumn("images").RightAligned())
            .AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn(new TableColumn("95 % interval").RightAligned())
            .AddColumn(new TableColumn("macro accuracy").RightAligned()).AddColumn(new TableColumn("log-loss").RightAligned())
            .AddColumn(new TableColumn("calibration error (95 %)").RightAligned());
        if (calibrated)
            summary.AddColumn(new TableColumn("before calibration (95 %)").RightAligned());
        foreach (var r in reports)
        {
            var cells = new List<string>
            {
                SafeMarkup.Escape(r.Split), r.Count.ToString(CultureInfo.InvariantCulture), $"[bold]{F(r.MicroAccuracy)}[/]", Interval(r.AccuracyInterval), F(r.MacroAccuracy), F(r.LogLoss),
                $"{F(r.ExpectedCalibrationError, "F3")} ({Interval(r.CalibrationErrorInterval)}){(r.CalibratedOnThese ? " *" : "")}",
            };
            if (calibrated)
                cells.Add(r.Uncalibrated is { } u ? $"{F(u.ExpectedCalibrationError, "F3")} ({Interval(u.CalibrationErrorInterval)})" : "-");
            summary.AddRow(cells.ToArray());
        }
        if (reports.Any(r => r.CalibratedOnThese))
            summary.Caption("* the temperature was fitted on these images: not an independent figure");
        console.Write(summary);
        console.MarkupLine(SafeMarkup.Escape(ConsistencyLine(reports)));
        foreach (var r in reports)
        {
            PerClass(console, r);
            Confusion(console, r);
        }
    }

    /// <summary>The calibration error a perfectly calibrated model would reach on each split, by chance alone.</summary>
    public static string ConsistencyLine(IReadOnlyList<ClassificationReport> reports) =>
        "A perfectly calibrated model would show a calibration error of up to " +
        string.Join(", ", reports.Select(r => FormattableString.Invariant($"{r.CalibrationErrorIfCalibrated:F3} on {r.Split} ({r.Count} images)"))) +
        " by chance (95 %): an error below that is consistent with calibration.";

    /// <summary>The temperature folded into the head, and what it was fitted on.</summary>
    public static void Calibration(IAnsiConsole console, Inference.ModelMetadata.CalibrationInfo? calibration)
    {
        if (calibration is null)
            return;
        console.MarkupLine(SafeMarkup.Escape(FormattableString.Invariant(
            $"Calibration: temperature {calibration.Temperature:F3} folded into the head, fitted on {calibration.FittedOn} (their log-loss {calibration.LogLossBefore:F4} -> {calibration.LogLossAfter:F4}); the predicted classes are unchanged")));
    }

    public static void Novelty(IAnsiConsole console, Inference.ModelMetadata.NoveltyInfo? novelty, IReadOnlyList<ClassificationReport> reports)
    {
        if (novelty is null)
            return;
        var rates = reports.Where(r => r.UnknownRate is not null).Select(r => FormattableString.Invariant($"{r.UnknownRate:P1} of {r.Split}")).ToList();
        console.MarkupLine(SafeMarkup.Escape(FormattableString.Invariant(
            $"Novelty: column {novelty.Column}; above {novelty.Threshold:F3} an image is answered \"unknown\", which {novelty.FalseAlarmRate:P0} of the {novelty.Images} training images' out-of-fold scores are")
            + (rates.Count > 0 ? $" (it calls {string.Join(", ", rates)} unknown: false alarms, every one is of a known class)" : "")));
    }

    public static void PerClass(IAnsiConsole console, ClassificationReport report)
    {
        var table = new Table().Title($"[bold]Per class[/] ({report.Split})").AddColumn("class")
            .AddColumn(new TableColumn("precision").RightAligned()).AddColumn(new TableColumn("recall").RightAligned())
            .AddColumn(new TableColumn("recall 95 %").RightAligned()).AddColumn(new TableColumn("F1").RightAligned()).AddColumn(new TableColumn("support").RightAligned());
        foreach (var c in report.PerClass)
            table.AddRow(SafeMarkup.Escape(c.Class), F(c.Precision), F(c.Recall), Interval((c.RecallLow, c.RecallHigh)), F(c.F1), c.Support.ToString(CultureInfo.InvariantCulture));
        console.Write(table);
    }

    public static void Confusion(IAnsiConsole console, ClassificationReport report)
    {
        var table = new Table().Title($"[bold]Confusion matrix[/] ({report.Split}; rows = actual, columns = predicted)").AddColumn("actual \\ predicted");
        foreach (var c in report.Classes)
            table.AddColumn(new TableColumn(SafeMarkup.Escape(c)).RightAligned());
        for (int a = 0; a < report.Classes.Count; a++)
        {
            var cells = new List<string> { SafeMarkup.Escape(report.Classes[a]) };
            for (int p = 0; p < report.Classes.Count; p++)
            {
                int n = report.ConfusionMatrix[a][p];
                cells.Add(n == 0 ? "[grey]0[/]" : a == p ? $"[green]{n}[/]" : $"[red]{n}[/]");
            }
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
    }
}

using System.Globalization;
using MlNetTransfer.Training;
using Spectre.Console;

namespace MlNetTransfer.Cli.Rendering;

/// <summary>The data checks' findings in the terminal: leakage first and in red (it inflates the reported figure), then conflicts, copies and suspected labels.</summary>
public static class DataCheckRenderer
{
    /// <summary>Rows shown per kind unless verbose; the metrics JSON (and <c>--json</c>) has every one.</summary>
    private const int Shown = 20;

    public static void Render(IAnsiConsole console, DataCheckReport? report, bool verbose)
    {
        if (report is null)
            return;
        // Paths inside the data are shown from its root: the tables stay readable; --json has them whole.
        string P(string? path) => SafeMarkup.Escape(path is null ? "" : File.Exists(report.Source) ? path : Path.GetRelativePath(report.Source, path) is var r && !r.StartsWith("..", StringComparison.Ordinal) ? r : path);
        string F(double? v) => v is { } x ? x.ToString("F3", CultureInfo.InvariantCulture) : "";
        var nearCount = report.Findings.Count(f => f.Kind != DataFindingKind.LabelError && !f.Exact);
        console.MarkupLine(SafeMarkup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Data checks of {report.Source}: {report.ImagesChecked} images; near-duplicates at cosine >= {report.NearDuplicateThreshold:F2} of the pooled features: {nearCount}; exact copies: {report.Findings.Count(f => f.Exact)}; ")
            + (report.LabelCheckSkipped is { } why ? $"labels not checked ({why})" : $"likely label errors: {report.Of(DataFindingKind.LabelError).Count()} of {report.LabelsChecked} training images ({report.Folds}-fold out-of-fold probabilities)")));
        foreach (var (kind, title, colour) in new[]
                 {
                     (DataFindingKind.Leakage, "LEAKAGE: copies of an earlier split's images (they inflate the figure on their split)", "red"),
                     (DataFindingKind.Conflict, "Conflicting labels: one image under two classes", "yellow"),
                     (DataFindingKind.Redundant, "Redundant copies within a class", "default"),
                 })
        {
            var rows = report.Of(kind).ToList();
            if (rows.Count == 0)
                continue;
            var table = new Table().Title($"[bold {colour}]{SafeMarkup.Escape(title)} ({rows.Count})[/]")
                .AddColumn("image").AddColumn("class, split").AddColumn("copy of").AddColumn("class, split").AddColumn(new TableColumn("cosine").RightAligned()).AddColumn("");
            foreach (var f in rows.Take(verbose ? rows.Count : Shown))
                table.AddRow(P(f.Path), SafeMarkup.Escape($"{f.Label}, {DataFinding.SplitWord(f.Split)}"), P(f.OtherPath),
                    SafeMarkup.Escape($"{f.OtherLabel}, {(f.OtherSplit is { } s ? DataFinding.SplitWord(s) : "")}"), f.Exact ? "exact" : F(f.Similarity), f.Dropped ? "left out" : "kept");
            console.Write(table);
            More(console, rows.Count, verbose);
        }
        var suspects = report.Of(DataFindingKind.LabelError).ToList();
        if (suspects.Count > 0)
        {
            var table = new Table().Title($"[bold yellow]Likely label errors ({suspects.Count}), most suspect first[/]")
                .AddColumn("image").AddColumn("given").AddColumn(new TableColumn("p").RightAligned()).AddColumn("looks like").AddColumn(new TableColumn("p").RightAligned());
            foreach (var f in suspects.Take(verbose ? suspects.Count : Shown))
                table.AddRow(P(f.Path), SafeMarkup.Escape(f.Label), F(f.GivenProbability), SafeMarkup.Escape(f.SuspectedLabel ?? ""),
                    F(f.SuspectedProbability) + (f.Confident ? " *" : ""));
            console.Write(table);
            if (suspects.Any(f => f.Confident))
                console.MarkupLine("  * also at or above that class's own threshold (confident learning's strict rule)");
            More(console, suspects.Count, verbose);
        }
    }

    private static void More(IAnsiConsole console, int count, bool verbose)
    {
        if (!verbose && count > Shown)
            console.MarkupLine($"  ... and {count - Shown} more (--verbose lists all; --json and the metrics JSON have every one)");
    }
}

using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class InfoSettings : GlobalSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandOption("--json")]
    [Description("Write the model's metadata as JSON to standard output.")]
    public bool Json { get; init; }
}

/// <summary><c>info</c>: what a model zip is, from its metadata, checked as every command checks a model.</summary>
public sealed class InfoCommand : Command<InfoSettings>
{
    public override int Execute(CommandContext context, InfoSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        // Through the path every command takes (structure, ML.NET load, classes against the metadata): what info shows is
        // what predict would use.
        using var package = ModelArchive.Open(settings.Model);
        var metadata = package.Metadata;
        if (metadata is null)
        {
            if (settings.Json)
                Console.Out.WriteLine(JsonSerializer.Serialize(new { model = settings.Model, classes = package.Classes, madeBy = "not MlNetTransfer" }));
            else
                console.MarkupLine($"{SafeMarkup.Escape(settings.Model)}: an ML.NET image classifier not made by MlNetTransfer; classes: {SafeMarkup.Escape(string.Join(", ", package.Classes))}");
            return 0;
        }
        if (settings.Json)
        {
            Console.Out.WriteLine(metadata.ToJson());
            return 0;
        }

        string F(double v) => v.ToString("F4", CultureInfo.InvariantCulture);
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string name, string value) => grid.AddRow($"[bold]{name}[/]", SafeMarkup.Escape(value));
        Row("model", Path.GetFullPath(settings.Model));
        Row("created", metadata.CreatedUtc.ToString("u", CultureInfo.InvariantCulture) + " by " + metadata.Tool);
        Row("mode", metadata.Mode + (metadata.ModeSelection is { } chosen ? $" (chosen by mode auto: {chosen.Chosen})" : ""));
        if (metadata.ModeSelection is { } selection)
        {
            Row("decision", selection.Decision);
            Row("candidates", string.Join("; ", selection.Candidates.Select(c => c.Accuracy is { } a
                ? string.Create(CultureInfo.InvariantCulture, $"{c.Candidate}: accuracy {a:F4} ({c.AccuracyLow:F3}-{c.AccuracyHigh:F3}), log-loss {c.LogLoss:F4}, {c.Seconds:F0} s, {c.Status}")
                : $"{c.Candidate}: {c.Status}")) + $" (on {selection.Images} {selection.ChosenOn})");
        }
        Row("classes", $"{metadata.Classes.Count}: {string.Join(", ", metadata.Classes)}");
        Row("conv base", $"{metadata.ConvBase.Name} ({metadata.ConvBase.Description})");
        Row("preprocessing", metadata.ConvBase.Preprocessing);
        Row("features", $"{metadata.ConvBase.FeatureLength} ({metadata.ConvBase.Pooling} pooling)");
        var head = metadata.Head;
        Row("head", head.Kind + (head.L2 is { } l2 ? string.Create(CultureInfo.InvariantCulture, $", L2 {l2:G4}{(head.CrossValidation.Count > 0 ? " by cross-validation" : "")}") : "")
                    + (head.WeightDecay is { } decay ? string.Create(CultureInfo.InvariantCulture, $", weight decay {decay:G4}") : ""));
        if (metadata.FineTune is { } ft)
        {
            if (ft.UnfrozenBlocks.Count > 0)
                Row("fine-tuned", $"{string.Join(", ", ft.UnfrozenBlocks)} (cut at {ft.Boundary})");
            Row("epochs", $"{ft.Epochs.Count} run, kept {ft.BestEpoch ?? "-"}{(ft.StoppedByUser ? " (stopped by the user)" : "")}");
        }
        Row("data", $"{metadata.Training.Data} ({metadata.Training.SplitOrigin}); " +
                    string.Join(", ", metadata.Training.ImagesPerSplit.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}")) +
                    $"; {metadata.Training.SkippedFiles} file(s) skipped");
        var t = metadata.Training;
        Row("images in the model", t.Refit ? $"{t.ImagesInModel} (refit on every labelled training image; {t.HeldOut} were held out first to choose)"
            : t.HeldOut > 0 ? $"{t.ImagesInModel} ({t.HeldOut} held out to choose, not trained on)" : t.ImagesInModel.ToString(CultureInfo.InvariantCulture));
        Row("seed", metadata.Training.Seed.ToString(CultureInfo.InvariantCulture));
        Row("options", string.Join(", ", metadata.Training.Options.Select(kv => $"{kv.Key}={kv.Value}")));
        if (metadata.Lineage is { } lineage)
            Row("lineage", string.Create(CultureInfo.InvariantCulture,
                $"generation {lineage.Generation}, continued from {lineage.ParentFile} (SHA-256 {lineage.ParentSha256[..Math.Min(16, lineage.ParentSha256.Length)]}..., made {lineage.ParentCreatedUtc:u}, trained on {lineage.ParentData}: {string.Join(", ", lineage.ParentImagesPerSplit.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}"))})"));
        if (metadata.Promotion is { } promotion)
            Row("compared with", $"{promotion.Previous}: {(promotion.NotWorse ? "" : "written with --force; ")}the new model is {promotion.Reason}");
        if (metadata.Calibration is { } c)
            Row("calibration", string.Create(CultureInfo.InvariantCulture,
                $"temperature {c.Temperature:F3} folded into the head, fitted on {c.FittedOn} (their log-loss {c.LogLossBefore:F4} -> {c.LogLossAfter:F4})"));
        if (metadata.Novelty is { } n)
            Row("novelty", string.Create(CultureInfo.InvariantCulture,
                $"column {n.Column}, unknown above {n.Threshold:F3} ({n.FalseAlarmRate:P0} of the {n.Images} training images' {n.Folds}-fold out-of-fold scores are above it; covariance shrinkage {n.Shrinkage:F2})"));
        foreach (var m in metadata.Metrics)
            Row($"{m.Split}", $"accuracy {F(m.MicroAccuracy)} (95 % {ReportRenderer.Interval(WilsonInterval.Of((int)Math.Round(m.MicroAccuracy * m.Count), m.Count))}), macro accuracy {F(m.MacroAccuracy)}, log-loss {F(m.LogLoss)}"
                                + (m.CalibrationError is { } e ? string.Create(CultureInfo.InvariantCulture, $", calibration error {e:F3}") : "")
                                + (m.CalibrationErrorBefore is { } b ? string.Create(CultureInfo.InvariantCulture, $" ({b:F3} before calibration)") : "")
                                + (m.UnknownRate is { } u ? string.Create(CultureInfo.InvariantCulture, $", {u:P1} called unknown") : "")
                                + $" ({m.Count} images)");
        console.Write(grid);
        return 0;
    }
}

using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Training;
using Spectre.Console;

namespace MlNetTransfer.Cli.Commands;

/// <summary>What <c>train</c> and <c>retrain</c> write and print: the model (the library saves it atomically), the report, the consumption sample, the tables.</summary>
internal static class TrainingOutput
{
    /// <summary>Exit code when the model is not written because it is worse than the one it was compared with.</summary>
    public const int NotPromoted = 3;

    public static int Write(IAnsiConsole console, TrainingSettings settings, TrainedImageClassifier trained, int skippedBefore, string? compareWith = null)
    {
        if (compareWith is not null)
        {
            ModelPromotion? promotion = null;
            string? cannot = null;
            try
            {
                promotion = trained.CompareWith(compareWith);
            }
            catch (InvalidOperationException e)
            {
                cannot = e.Message;
            }
            if (promotion is not { NotWorse: true } && !settings.Force)
            {
                if (!settings.Quiet)
                    ReportRenderer.Metrics(console, trained.Reports);
                var why = promotion is null ? $"it cannot be compared with {compareWith}: {cannot}" : $"the new model is {promotion.Reason}";
                console.MarkupLine($"[red]Not saved:[/] {SafeMarkup.Escape($"{why}. {Path.GetFullPath(settings.Out)} is left as it was; --force writes it anyway.")}");
                return NotPromoted;
            }
            console.MarkupLine(SafeMarkup.Escape(promotion is null ? $"Not compared with {compareWith} ({cannot}); written because of --force."
                : $"Compared with {compareWith}: the new model is {promotion.Reason}" + (promotion.NotWorse ? "." : "; written because of --force.")));
        }
        var metricsPath = trained.Save(settings.Out);
        var dataset = trained.Dataset;
        var reportPath = Reporting.TrainingReportWriter.Write(settings.ReportDir ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(settings.Out))!, "report"),
            settings.Out, trained.Metadata, trained.Reports, dataset.Skipped, trained.DataChecks);
        var samplePath = Reporting.ConsumptionSample.Write(settings.Out, trained.Classes, trained.Metadata.Novelty?.Threshold);

        if (!settings.Quiet)
        {
            if (dataset.Skipped.Count > skippedBefore)
                ReportRenderer.Skipped(console, dataset.Skipped.Skip(skippedBefore).ToList(), settings.Verbose);
            DataCheckRenderer.Render(console, trained.DataChecks, settings.Verbose);
            ReportRenderer.ModeSelection(console, trained.Metadata.ModeSelection);
            ReportRenderer.CrossValidation(console, trained.Metadata.Head.CrossValidation, trained.Metadata.Head.L2);
            ReportRenderer.Metrics(console, trained.Reports);
            ReportRenderer.Calibration(console, trained.Metadata.Calibration);
            ReportRenderer.Novelty(console, trained.Metadata.Novelty, trained.Reports);
        }
        var m = trained.Metadata;
        var headline = trained.Reports.FirstOrDefault();
        var accuracy = headline is null ? "" : FormattableString.Invariant($"; {headline.Split} accuracy {headline.MicroAccuracy:F4}");
        console.MarkupLine(FormattableString.Invariant(
            $"Saved [bold]{SafeMarkup.Escape(Path.GetFullPath(settings.Out))}[/] ({m.Mode}, {HeadWord(m.Head.Kind)} head, {trained.Classes.Count} classes, base {SafeMarkup.Escape(m.ConvBase.Name)}){SafeMarkup.Escape(accuracy)}"));
        var t = m.Training;
        console.MarkupLine(t.Refit
            ? $"Images in the model: {t.ImagesInModel}, every labelled training image ({t.HeldOut} were held out first to choose; figures on them are from before the refit)"
            : t.HeldOut > 0
                ? $"Images in the model: {t.ImagesInModel} ({t.HeldOut} training images held out to choose, not trained on)"
                : $"Images in the model: {t.ImagesInModel}");
        if (m.FineTune is { StoppedByUser: true })
            console.MarkupLine($"[yellow]Training was stopped by the user; {SafeMarkup.Escape(Path.GetFullPath(settings.Out))} holds the best epoch so far ({SafeMarkup.Escape(m.FineTune.BestEpoch ?? "-")}).[/]");
        console.MarkupLine($"Metrics: {SafeMarkup.Escape(metricsPath)}");
        console.MarkupLine($"Report: {SafeMarkup.Escape(reportPath)}");
        console.MarkupLine($"How to use it in an app: {SafeMarkup.Escape(samplePath)}");
        return 0;
    }

    /// <summary>The metadata's head kind as the console names it.</summary>
    private static string HeadWord(string kind) =>
        Inference.ModelMetadata.HeadKinds.Parse(kind) is { } head ? OptionFlags.Heads.WordOf(head) : kind;
}

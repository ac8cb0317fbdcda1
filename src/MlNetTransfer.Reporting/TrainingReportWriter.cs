using System.Globalization;
using System.Net;
using System.Text;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using OxyPlot;

namespace MlNetTransfer.Reporting;

/// <summary>
/// Writes <c>report/</c> for a trained model: a self-contained <c>report.html</c> (plots and images inline, nothing
/// fetched) and the plots as PNG files beside it. Learning curves (or, for the L-BFGS head, the regularization curve),
/// confusion-matrix heatmap, per-class precision/recall/F1, the top-losses gallery (fastai's plot_top_losses), the
/// most-confused class pairs, the training options and the skipped files.
/// </summary>
public static class TrainingReportWriter
{
    /// <summary>How many validation images the top-losses gallery shows.</summary>
    public const int TopLosses = 12;

    /// <param name="folder">Where report.html and the PNG plots go.</param>
    /// <param name="modelPath">The model the report is of.</param>
    /// <param name="metadata">The model's metadata.</param>
    /// <param name="reports">Metrics of the held-out splits, reported one first.</param>
    /// <param name="skipped">Every file left out, with the reason.</param>
    /// <param name="dataChecks">What the data checks found before training (null: no section).</param>
    public static string Write(string folder, string modelPath, ModelMetadata metadata, IReadOnlyList<ClassificationReport> reports, IReadOnlyList<SkippedFile> skipped,
        DataCheckReport? dataChecks = null)
    {
        Directory.CreateDirectory(folder);
        var plots = new List<(string File, string Title, PlotModel Model)>();
        var epochs = metadata.FineTune?.Epochs ?? [];
        if (epochs.Count > 0)
        {
            plots.Add(("loss.png", "Loss per epoch", ReportCharts.LearningCurve(epochs, accuracy: false)));
            plots.Add(("accuracy.png", "Accuracy per epoch", ReportCharts.LearningCurve(epochs, accuracy: true)));
        }
        else if (metadata.Head.CrossValidation.Count > 0)
        {
            plots.Add(("regularization.png", "Head regularization", ReportCharts.Regularization(metadata.Head.CrossValidation, metadata.Head.L2 ?? float.NaN)));
        }
        foreach (var r in reports)
            plots.Add(($"confusion-{Slug(r.Split)}.png", $"Confusion matrix ({r.Split})", ReportCharts.Confusion(r)));
        foreach (var r in reports.Where(r => r.Count > 0))
            plots.Add(($"reliability-{Slug(r.Split)}.png", $"Reliability ({r.Split})", ReportCharts.Reliability(r)));

        var pngs = new Dictionary<string, byte[]>();
        foreach (var (file, _, model) in plots)
        {
            using var stream = new MemoryStream();
            int size = Math.Max(480, 60 * (reports.FirstOrDefault()?.Classes.Count ?? 4));
            new OxyPlot.SkiaSharp.PngExporter { Width = file.StartsWith("confusion", StringComparison.Ordinal) ? size + 120 : 720, Height = file.StartsWith("confusion", StringComparison.Ordinal) ? size : 420 }.Export(model, stream);
            pngs[file] = stream.ToArray();
            IO.AtomicFile.Write(Path.Combine(folder, file), s => s.Write(pngs[file]));
        }

        var html = Html(modelPath, metadata, reports, skipped, dataChecks, plots.Select(p => (p.Title, "data:image/png;base64," + Convert.ToBase64String(pngs[p.File]))).ToList());
        var path = Path.Combine(folder, "report.html");
        IO.AtomicFile.WriteAllText(path, html);
        return path;
    }

    private static string Html(string modelPath, ModelMetadata m, IReadOnlyList<ClassificationReport> reports, IReadOnlyList<SkippedFile> skipped,
        DataCheckReport? dataChecks, IReadOnlyList<(string Title, string DataUri)> plots)
    {
        static string E(string s) => WebUtility.HtmlEncode(IO.PrintableText.Escape(s));
        static string F(double v) => double.IsNaN(v) ? "-" : v.ToString("F4", CultureInfo.InvariantCulture);
        static string Interval((double Low, double High) i) => FormattableString.Invariant($"{i.Low:F3}-{i.High:F3}");
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(Path.GetFileName(modelPath))).Append(" - training report</title><style>")
          .Append("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;max-width:1200px}")
          .Append("table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}th{background:#f3f3f3}")
          .Append("td:first-child,th:first-child{text-align:left}.plots img{max-width:100%;margin:0 1rem 1rem 0;border:1px solid #eee}")
          .Append(".gallery{display:flex;flex-wrap:wrap;gap:12px}.card{width:190px;border:1px solid #ddd;padding:6px;font-size:.8rem}")
          .Append(".card img{display:block;margin:0 auto 4px;max-width:180px;max-height:180px}.bad{color:#b00}.meta td{text-align:left}</style></head><body>");
        sb.Append("<h1>Training report</h1><table class=\"meta\">");
        void Row(string k, string v) => sb.Append("<tr><th>").Append(E(k)).Append("</th><td>").Append(E(v)).Append("</td></tr>");
        Row("model", Path.GetFullPath(modelPath));
        Row("created", m.CreatedUtc.ToString("u", CultureInfo.InvariantCulture) + " by " + m.Tool);
        Row("mode", m.Mode + ", " + m.Head.Kind + " head" + (m.FineTune is { UnfrozenBlocks.Count: > 0 } f ? ", unfrozen " + string.Join(", ", f.UnfrozenBlocks) : ""));
        Row("conv base", $"{m.ConvBase.Name}: {m.ConvBase.Preprocessing}");
        Row("classes", string.Join(", ", m.Classes));
        Row("data", $"{m.Training.Data} ({m.Training.SplitOrigin})");
        Row("images in the model", m.Training.Refit
            ? $"{m.Training.ImagesInModel}: every labelled training image ({m.Training.HeldOut} of them held out first to choose; the held-out figures are from before the refit)"
            : m.Training.HeldOut > 0
                ? $"{m.Training.ImagesInModel} ({m.Training.HeldOut} training images held out to choose and never trained on: no refit)"
                : m.Training.ImagesInModel.ToString(CultureInfo.InvariantCulture));
        sb.Append("</table>");
        // Leakage changes how every figure below reads, so the checks come first.
        DataCheckSection.Append(sb, dataChecks);

        if (m.ModeSelection is { } selection)
        {
            sb.Append("<h2>How the mode was chosen</h2><p><b>").Append(E(selection.Decision)).Append("</b></p>")
              .Append("<p>Candidates scored on ").Append(selection.Images).Append(' ').Append(E(selection.ChosenOn)).Append(" (no reported figure comes from them). Rule: ").Append(E(selection.Rule)).Append("</p>")
              .Append("<table><tr><th>candidate</th><th>blocks</th><th>learning rate</th><th>accuracy</th><th>95 % interval (Wilson)</th><th>log-loss</th><th>log-loss gain (95 % interval)</th><th>McNemar p</th><th>seconds</th><th>status</th></tr>");
            foreach (var c in selection.Candidates)
            {
                string bold(string v) => c.Chosen ? $"<b>{v}</b>" : v;
                sb.Append("<tr><td>").Append(bold(E(c.Candidate))).Append("</td><td>").Append(E(c.Blocks)).Append("</td><td>").Append(E(c.LearningRate ?? "-")).Append("</td><td>")
                  .Append(c.Accuracy is { } a ? F(a) : "-").Append("</td><td>")
                  .Append(c.AccuracyLow is { } lo ? string.Create(CultureInfo.InvariantCulture, $"{lo:F3} to {c.AccuracyHigh:F3}") : "-").Append("</td><td>")
                  .Append(c.LogLoss is { } l ? F(l) : "-").Append("</td><td>")
                  .Append(c.LogLossGain is { } g ? string.Create(CultureInfo.InvariantCulture, $"{g:+0.000;-0.000} ({c.LogLossGainLow:+0.000;-0.000} to {c.LogLossGainHigh:+0.000;-0.000})") : "-").Append("</td><td>")
                  .Append(c.McNemarP is { } p ? p.ToString("G2", CultureInfo.InvariantCulture) : "-").Append("</td><td>")
                  .Append(c.Seconds.ToString("F0", CultureInfo.InvariantCulture)).Append("</td><td>").Append(E(c.Status)).Append("</td></tr>");
            }
            sb.Append("</table>");
        }

        bool calibrated = reports.Any(r => r.Uncalibrated is not null);
        sb.Append("<h2>Metrics</h2><table><tr><th>split</th><th>images</th><th>accuracy</th><th>95 % interval (Wilson)</th><th>macro accuracy</th><th>log-loss</th><th>expected calibration error (95 % bootstrap)</th>")
          .Append(calibrated ? "<th>before calibration</th>" : "").Append("</tr>");
        foreach (var r in reports)
        {
            sb.Append($"<tr><td>{E(r.Split)}</td><td>{r.Count}</td><td><b>{F(r.MicroAccuracy)}</b></td><td>{Interval(r.AccuracyInterval)}</td><td>{F(r.MacroAccuracy)}</td><td>{F(r.LogLoss)}</td>" +
                FormattableString.Invariant($"<td>{r.ExpectedCalibrationError:F3} ({Interval(r.CalibrationErrorInterval)}){(r.CalibratedOnThese ? " *" : "")}</td>"));
            if (calibrated)
                sb.Append(r.Uncalibrated is { } u ? FormattableString.Invariant($"<td>{u.ExpectedCalibrationError:F3} ({Interval(u.CalibrationErrorInterval)}), log-loss {u.LogLoss:F4}</td>") : "<td>-</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>");
        if (reports.Any(r => r.CalibratedOnThese))
            sb.Append("<p>* The temperature was fitted on these images: their calibration figure after it is not an independent estimate.</p>");
        sb.Append("<p>").Append(E("A perfectly calibrated model would show a calibration error of up to " +
            string.Join(", ", reports.Select(r => FormattableString.Invariant($"{r.CalibrationErrorIfCalibrated:F3} on {r.Split} ({r.Count} images)"))) +
            " by chance (95 %, its correct answers drawn from its own probabilities): an error below that is consistent with calibration.")).Append("</p>");
        if (m.Calibration is { } calibration)
            sb.Append("<p>").Append(E(FormattableString.Invariant(
                $"Calibration: temperature {calibration.Temperature:F3}, folded into the head's weights (W / T, b / T), fitted on {calibration.FittedOn} (their log-loss {calibration.LogLossBefore:F4} -> {calibration.LogLossAfter:F4}). The predicted classes, and so the accuracies, are unchanged."))).Append("</p>");
        if (m.Novelty is { } novelty)
        {
            var rates = reports.Where(r => r.UnknownRate is not null).Select(r => FormattableString.Invariant($"{r.UnknownRate:P1} of {r.Split}")).ToList();
            sb.Append("<p>").Append(E(FormattableString.Invariant(
                $"Novelty: the zip's {novelty.Column} column is the {novelty.Method}. Above {novelty.Threshold:F3} an image is answered \"unknown\": {novelty.FalseAlarmRate:P0} of the {novelty.Images} training images' {novelty.Folds}-fold out-of-fold scores are above it.")
                + (rates.Count > 0 ? $" It calls {string.Join(", ", rates)} unknown (false alarms: every one is of a known class)." : ""))).Append("</p>");
        }

        sb.Append("<h2>Plots</h2><div class=\"plots\">");
        foreach (var (title, uri) in plots)
            sb.Append("<img alt=\"").Append(E(title)).Append("\" src=\"").Append(uri).Append("\">");
        sb.Append("</div>");

        foreach (var r in reports)
        {
            sb.Append($"<h2>Per class ({E(r.Split)})</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>recall 95 %</th><th>F1</th><th>support</th></tr>");
            foreach (var c in r.PerClass)
                sb.Append($"<tr><td>{E(c.Class)}</td><td>{F(c.Precision)}</td><td>{F(c.Recall)}</td><td>{Interval((c.RecallLow, c.RecallHigh))}</td><td>{F(c.F1)}</td><td>{c.Support}</td></tr>");
            sb.Append("</table>");
            var confused = r.MostConfused(10);
            sb.Append($"<h3>Most confused ({E(r.Split)})</h3>");
            if (confused.Count == 0) sb.Append("<p>No confusions.</p>");
            else
            {
                sb.Append("<table><tr><th>actual</th><th>predicted as</th><th>images</th></tr>");
                foreach (var (actual, predicted, count) in confused)
                    sb.Append($"<tr><td>{E(actual)}</td><td>{E(predicted)}</td><td>{count}</td></tr>");
                sb.Append("</table>");
            }
        }

        if (reports.FirstOrDefault() is { } reported)
        {
            sb.Append($"<h2>Top losses ({E(reported.Split)})</h2><p>The {TopLosses} images the model got most wrong: highest loss, i.e. lowest probability of the actual class.</p><div class=\"gallery\">");
            foreach (var image in reported.TopLosses(TopLosses))
            {
                var uri = Thumbnails.DataUri(image.Path);
                sb.Append("<div class=\"card\">");
                if (uri is not null) sb.Append("<img alt=\"").Append(E(Path.GetFileName(image.Path))).Append("\" src=\"").Append(uri).Append("\">");
                sb.Append($"<div>predicted <b class=\"{(image.Predicted == image.Actual ? "" : "bad")}\">{E(image.Predicted)}</b> ({F(image.PredictedProbability)})</div>")
                  .Append($"<div>actual <b>{E(image.Actual)}</b> ({F(image.ActualProbability)})</div>")
                  .Append($"<div>loss {F(image.Loss)}</div><div title=\"{E(image.Path)}\">{E(Path.GetFileName(image.Path))}</div></div>");
            }
            sb.Append("</div>");
        }

        if (m.FineTune is { Epochs.Count: > 0 } ft)
        {
            void Epochs(string title, IReadOnlyList<ModelMetadata.EpochRow> rows)
            {
                sb.Append("<h2>").Append(E(title)).Append("</h2><table><tr><th>phase</th><th>epoch</th><th>train loss</th><th>train acc</th><th>val loss</th><th>val acc</th><th>lr</th><th>seconds</th></tr>");
                foreach (var e in rows)
                    sb.Append($"<tr><td>{E(e.Phase)}</td><td>{e.Epoch}</td><td>{F(e.TrainLoss)}</td><td>{F(e.TrainAccuracy)}</td><td>{F(e.ValidationLoss)}</td><td>{F(e.ValidationAccuracy)}</td><td>{e.LearningRate.ToString("0.0e+00", CultureInfo.InvariantCulture)}</td><td>{e.Seconds.ToString("F1", CultureInfo.InvariantCulture)}</td></tr>");
                sb.Append("</table>");
            }
            Epochs("Epochs", ft.Epochs);
            sb.Append($"<p>Kept: {E(ft.BestEpoch ?? "-")}{(ft.StoppedByUser ? " (training was stopped by the user)" : "")}.</p>");
            if (ft.RefitEpochs.Count > 0)
                Epochs("Refit on all training images (the held-out share chose the epoch above)", ft.RefitEpochs);
        }

        sb.Append("<h2>Training options</h2><table class=\"meta\">");
        Row("seed", m.Training.Seed.ToString(CultureInfo.InvariantCulture));
        foreach (var (k, v) in m.Training.ImagesPerSplit)
            Row(k + " images", v.ToString(CultureInfo.InvariantCulture));
        if (m.Head.WeightDecay is { } decay)
            Row("weight decay", decay.ToString("G4", CultureInfo.InvariantCulture));
        else if (m.Head.L2 is { } l2)
            Row("L2", l2.ToString("G4", CultureInfo.InvariantCulture));
        foreach (var (k, v) in m.Training.Options)
            Row(k, v);
        sb.Append("</table>");

        sb.Append($"<h2>Skipped files ({skipped.Count})</h2>");
        if (skipped.Count > 0)
        {
            sb.Append("<table><tr><th>file</th><th>reason</th></tr>");
            foreach (var s in skipped)
                sb.Append($"<tr><td>{E(s.Path)}</td><td style=\"text-align:left\">{E(s.Reason)}</td></tr>");
            sb.Append("</table>");
        }
        // Lets a headless browser (and the tests) see that every image rendered.
        sb.Append("<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);")
          .Append("document.body.setAttribute('data-images-total',i.length);")
          .Append("document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length);});</script>");
        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static string Slug(string split) => string.Concat(split.Where(char.IsLetterOrDigit));
}

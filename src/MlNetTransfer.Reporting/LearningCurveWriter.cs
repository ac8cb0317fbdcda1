using System.Globalization;
using System.Net;
using System.Text;
using MlNetTransfer.Training;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace MlNetTransfer.Reporting;

/// <summary>The learning curve as files: <c>learning-curve.csv</c> (every point), <c>learning-curve.png</c> and a self-contained <c>learning-curve.html</c>.</summary>
public static class LearningCurveWriter
{
    /// <summary>Writes the three files into <paramref name="folder"/>; returns the HTML page's path.</summary>
    public static string Write(string folder, LearningCurveResult result)
    {
        Directory.CreateDirectory(folder);
        var csv = new StringBuilder("method,images_per_class,all_images,subsample,training_images,accuracy,seconds\n");
        foreach (var p in result.Points)
            csv.Append(CultureInfo.InvariantCulture, $"{LearningCurveResult.Words(p.Method)},{p.ImagesPerClass:0.##},{(p.AllImages ? "true" : "false")},{p.Repeat + 1},{p.TrainingImages},{p.Accuracy:F4},{p.Seconds:F1}\n");
        IO.AtomicFile.WriteAllText(Path.Combine(folder, "learning-curve.csv"), csv.ToString());

        var chart = Chart(result);
        using var png = new MemoryStream();
        new OxyPlot.SkiaSharp.PngExporter { Width = 820, Height = 480 }.Export(chart, png);
        var bytes = png.ToArray();
        IO.AtomicFile.Write(Path.Combine(folder, "learning-curve.png"), s => s.Write(bytes));

        static string E(string s) => WebUtility.HtmlEncode(IO.PrintableText.Escape(s));
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Learning curve</title><style>")
            .Append("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;max-width:1000px}")
            .Append("table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}</style></head><body>")
            .Append("<h1>Learning curve</h1><p>").Append(E(result.Data)).Append(": accuracy on ").Append(result.EvaluationImages).Append(' ').Append(E(result.EvaluatedOn))
            .Append(" (no subsample trained on them) against training images per class; each point a seeded subsample, the line their mean, dashed the fitted power law.</p>")
            .Append("<img alt=\"learning curve\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(bytes)).Append("\">")
            .Append("<h2>What more images would buy</h2><ul>");
        foreach (var f in result.Fits)
            html.Append("<li>").Append(E(f.Sentence)).Append("</li>");
        html.Append("</ul><h2>Mean accuracy</h2><table><tr><th>images per class</th>");
        var methods = result.Points.Select(p => p.Method).Distinct().ToList();
        foreach (var m in methods)
            html.Append("<th>").Append(E(LearningCurveResult.Words(m))).Append("</th>");
        html.Append("</tr>");
        foreach (var size in result.Points.GroupBy(p => (p.ImagesPerClass, p.AllImages)).OrderBy(g => g.Key.ImagesPerClass))
        {
            html.Append("<tr><td>").Append(size.Key.AllImages ? string.Create(CultureInfo.InvariantCulture, $"all ({size.Key.ImagesPerClass:0.#})") : size.Key.ImagesPerClass.ToString(CultureInfo.InvariantCulture)).Append("</td>");
            foreach (var m in methods)
            {
                var at = size.Where(p => p.Method == m).ToList();
                html.Append("<td>").Append(at.Count == 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{at.Average(p => p.Accuracy):F3} ({at.Min(p => p.Accuracy):F3}-{at.Max(p => p.Accuracy):F3})")).Append("</td>");
            }
            html.Append("</tr>");
        }
        html.Append("</table><h2>How each method trained</h2><ul>");
        foreach (var (method, recipe) in result.Recipes)
            html.Append("<li><b>").Append(E(method)).Append("</b>: ").Append(E(recipe)).Append("</li>");
        html.Append("</ul>");
        if (result.Skipped.Count > 0)
        {
            html.Append("<h2>Skipped</h2><ul>");
            foreach (var s in result.Skipped)
                html.Append("<li>").Append(E(s)).Append("</li>");
            html.Append("</ul>");
        }
        html.Append("<p>Every point is in learning-curve.csv beside this page.</p></body></html>");
        var page = Path.Combine(folder, "learning-curve.html");
        IO.AtomicFile.WriteAllText(page, html.ToString());
        return page;
    }

    /// <summary>Accuracy against images per class (log axis): every subsample, the mean line, the fitted curve.</summary>
    public static PlotModel Chart(LearningCurveResult result)
    {
        var model = new PlotModel { Title = $"Learning curve ({result.EvaluationImages} {result.EvaluatedOn})", TitleFontSize = 14, DefaultFont = "DejaVu Sans", Background = OxyColors.White };
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.BottomRight, LegendPlacement = LegendPlacement.Inside, LegendBackground = OxyColor.FromAColor(200, OxyColors.White) });
        model.Axes.Add(new LogarithmicAxis { Position = AxisPosition.Bottom, Title = "training images per class", MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "accuracy", Minimum = 0, Maximum = 1, MajorGridlineStyle = LineStyle.Dot });
        var colours = new Dictionary<LearningCurveMethod, OxyColor>
        {
            [LearningCurveMethod.FromScratch] = OxyColor.FromRgb(0xd6, 0x27, 0x28),
            [LearningCurveMethod.FeatureExtraction] = OxyColor.FromRgb(0x1f, 0x77, 0xb4),
            [LearningCurveMethod.FineTuning] = OxyColor.FromRgb(0x2c, 0xa0, 0x2c),
        };
        foreach (var method in result.Points.Select(p => p.Method).Distinct())
        {
            var colour = colours[method];
            var points = result.Points.Where(p => p.Method == method).ToList();
            var each = new ScatterSeries { MarkerType = MarkerType.Circle, MarkerSize = 2.5, MarkerFill = OxyColor.FromAColor(110, colour) };
            foreach (var p in points)
                each.Points.Add(new ScatterPoint(p.ImagesPerClass, p.Accuracy));
            var mean = new LineSeries { Title = LearningCurveResult.Words(method), Color = colour, MarkerType = MarkerType.Square, MarkerSize = 3, MarkerFill = colour };
            foreach (var g in points.GroupBy(p => p.ImagesPerClass).OrderBy(g => g.Key))
                mean.Points.Add(new DataPoint(g.Key, g.Average(p => p.Accuracy)));
            model.Series.Add(each);
            model.Series.Add(mean);
            if (result.Fits.FirstOrDefault(f => f.Method == method) is { B: > 0 } fit)
            {
                var curve = new LineSeries { Color = colour, LineStyle = LineStyle.Dash, StrokeThickness = 1 };
                double lo = points.Min(p => p.ImagesPerClass), hi = fit.AtImagesPerClass + fit.MoreImagesPerClass;
                for (int i = 0; i <= 40; i++)
                {
                    double n = lo * Math.Pow(hi / lo, i / 40.0);
                    curve.Points.Add(new DataPoint(n, Math.Max(0, 1 - fit.A * Math.Pow(n, -fit.B))));
                }
                model.Series.Add(curve);
            }
        }
        return model;
    }
}

using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace MlNetTransfer.Reporting;

/// <summary>The report's plots as OxyPlot models (rendered to PNG files and inline into the HTML).</summary>
public static class ReportCharts
{
    /// <summary>Loss (or accuracy) per epoch, train vs validation, across the head and fine-tuning phases.</summary>
    public static PlotModel LearningCurve(IReadOnlyList<ModelMetadata.EpochRow> epochs, bool accuracy)
    {
        var model = Base(accuracy ? "Accuracy per epoch" : "Loss per epoch");
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = "epoch (head phase, then fine-tuning)", MinimumPadding = 0.02, MaximumPadding = 0.02, MinimumMajorStep = 1, MinimumMinorStep = 1 });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = accuracy ? "accuracy" : "cross-entropy loss", MajorGridlineStyle = LineStyle.Dot });
        var train = new LineSeries { Title = "train", MarkerType = MarkerType.Circle, MarkerSize = 3 };
        var validation = new LineSeries { Title = "validation", MarkerType = MarkerType.Square, MarkerSize = 3 };
        for (int i = 0; i < epochs.Count; i++)
        {
            var e = epochs[i];
            train.Points.Add(new DataPoint(i + 1, accuracy ? e.TrainAccuracy : e.TrainLoss));
            double v = accuracy ? e.ValidationAccuracy : e.ValidationLoss;
            if (!double.IsNaN(v)) validation.Points.Add(new DataPoint(i + 1, v));
        }
        model.Series.Add(train);
        if (validation.Points.Count > 0) model.Series.Add(validation);
        int firstFineTune = epochs.ToList().FindIndex(e => e.Phase == "fine-tune");
        if (firstFineTune > 0)
            model.Annotations.Add(new LineAnnotation { Type = LineAnnotationType.Vertical, X = firstFineTune + 0.5, Text = "unfreeze", LineStyle = LineStyle.Dash, Color = OxyColors.Gray });
        return model;
    }

    /// <summary>Cross-validated log-loss and accuracy against the L2 weight (the L-BFGS head has no epochs).</summary>
    public static PlotModel Regularization(IReadOnlyList<Training.CrossValidationResult> rows, float chosen)
    {
        var model = Base("Head regularization (5-fold cross-validation on train)");
        model.Axes.Add(new LogarithmicAxis { Position = AxisPosition.Bottom, Title = "L2 weight" });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "log-loss", Key = "loss", MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Right, Title = "accuracy", Key = "accuracy" });
        var loss = new LineSeries { Title = "log-loss", YAxisKey = "loss", MarkerType = MarkerType.Circle };
        var acc = new LineSeries { Title = "accuracy", YAxisKey = "accuracy", MarkerType = MarkerType.Square };
        foreach (var r in rows)
        {
            loss.Points.Add(new DataPoint(r.L2, r.LogLoss));
            acc.Points.Add(new DataPoint(r.L2, r.Accuracy));
        }
        model.Series.Add(loss);
        model.Series.Add(acc);
        model.Annotations.Add(new LineAnnotation { Type = LineAnnotationType.Vertical, X = chosen, Text = "chosen", LineStyle = LineStyle.Dash, Color = OxyColors.Gray });
        return model;
    }

    /// <summary>
    /// Reliability diagram: accuracy against mean confidence per confidence bin (a calibrated model sits on the diagonal),
    /// with the images per bin as marker size; a calibrated model's bins before its temperature beside them.
    /// </summary>
    public static PlotModel Reliability(ClassificationReport report)
    {
        var before = report.Uncalibrated;
        var model = Base(before is null
            ? FormattableString.Invariant($"Reliability ({report.Split}): expected calibration error {report.ExpectedCalibrationError:F3}")
            : FormattableString.Invariant($"Reliability ({report.Split}): calibration error {before.ExpectedCalibrationError:F3} before, {report.ExpectedCalibrationError:F3} after"));
        model.Legends[0].LegendPosition = LegendPosition.BottomRight; // the sure, right images sit top right
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = "confidence (top probability)", Minimum = 0, Maximum = 1, MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "accuracy", Minimum = 0, Maximum = 1, MajorGridlineStyle = LineStyle.Dot });
        var ideal = new LineSeries { Title = "calibrated", LineStyle = LineStyle.Dash, Color = OxyColors.Gray };
        ideal.Points.Add(new DataPoint(0, 0));
        ideal.Points.Add(new DataPoint(1, 1));
        model.Series.Add(ideal);
        if (before is not null)
            AddBins(model, before, "before calibration", OxyColors.DarkOrange);
        AddBins(model, report, before is null ? "observed (marker size: images)" : "saved model, calibrated (marker size: images)", OxyColors.SteelBlue);
        return model;
    }

    private static void AddBins(PlotModel model, ClassificationReport report, string title, OxyColor color)
    {
        var observed = new LineSeries { Title = title, MarkerType = MarkerType.Circle, Color = color };
        var bins = report.Reliability.Where(b => b.Count > 0).ToList();
        foreach (var b in bins)
            observed.Points.Add(new DataPoint(b.Confidence, b.Accuracy));
        var sizes = new ScatterSeries { MarkerType = MarkerType.Circle, MarkerFill = OxyColor.FromAColor(90, color) };
        int most = bins.Count == 0 ? 1 : bins.Max(b => b.Count);
        foreach (var b in bins)
            sizes.Points.Add(new ScatterPoint(b.Confidence, b.Accuracy, 3 + 9 * Math.Sqrt(b.Count / (double)most)));
        model.Series.Add(observed);
        model.Series.Add(sizes);
    }

    /// <summary>Confusion matrix heatmap, rows = actual, columns = predicted, with counts in the cells.</summary>
    public static PlotModel Confusion(ClassificationReport report)
    {
        int k = report.Classes.Count;
        var model = Base($"Confusion matrix ({report.Split})");
        model.Axes.Add(new LinearColorAxis { Position = AxisPosition.Right, Palette = OxyPalette.Interpolate(100, OxyColors.White, OxyColor.FromRgb(33, 102, 172)), Title = "images" });
        var x = new CategoryAxis { Position = AxisPosition.Bottom, Title = "predicted", Angle = k > 6 ? -40 : 0 };
        var y = new CategoryAxis { Position = AxisPosition.Left, Title = "actual", StartPosition = 1, EndPosition = 0 };
        x.Labels.AddRange(report.Classes);
        y.Labels.AddRange(report.Classes);
        model.Axes.Add(x);
        model.Axes.Add(y);
        var data = new double[k, k];
        for (int p = 0; p < k; p++)
            for (int a = 0; a < k; a++)
                data[p, a] = report.ConfusionMatrix[a][p];
        model.Series.Add(new HeatMapSeries
        {
            X0 = 0, X1 = k - 1, Y0 = 0, Y1 = k - 1, Data = data, Interpolate = false, RenderMethod = HeatMapRenderMethod.Rectangles,
            LabelFontSize = 0.25, LabelFormatString = "0",
        });
        return model;
    }

    /// <summary>The learning-rate range test: smoothed loss against the rate (log scale), with the suggestion marked.</summary>
    public static PlotModel LearningRate(IReadOnlyList<(double Rate, double Loss, double Smoothed)> points, double suggested)
    {
        var model = Base("Learning-rate range test");
        model.Axes.Add(new LogarithmicAxis { Position = AxisPosition.Bottom, Title = "learning rate", MajorGridlineStyle = LineStyle.Dot });
        // Batch losses spike when the rate diverges: scale the axis to the smoothed curve up to the step before the sweep
        // stopped (where it passed 4x its minimum), wherever along it the minimum lies.
        double top = points.Count == 0 ? 1 : points.Take(Math.Max(1, points.Count - 1)).Max(p => p.Smoothed) * 1.15;
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "loss", MajorGridlineStyle = LineStyle.Dot, Minimum = 0, Maximum = top });
        var raw = new LineSeries { Title = "batch loss", Color = OxyColor.FromAColor(70, OxyColors.Gray) };
        var smooth = new LineSeries { Title = "smoothed loss", StrokeThickness = 2 };
        foreach (var (rate, loss, smoothed) in points)
        {
            raw.Points.Add(new DataPoint(rate, loss));
            smooth.Points.Add(new DataPoint(rate, smoothed));
        }
        model.Series.Add(raw);
        model.Series.Add(smooth);
        model.Annotations.Add(new LineAnnotation { Type = LineAnnotationType.Vertical, X = suggested, Text = $"suggested {suggested:0.0e0}", Color = OxyColors.Red, LineStyle = LineStyle.Dash });
        return model;
    }

    /// <summary>Writes a plot as a PNG file (atomically).</summary>
    public static void SavePng(PlotModel model, string path, int width = 720, int height = 420)
    {
        using var stream = new MemoryStream();
        new OxyPlot.SkiaSharp.PngExporter { Width = width, Height = height }.Export(model, stream);
        IO.AtomicFile.Write(path, s => s.Write(stream.ToArray()));
    }

    private static PlotModel Base(string title)
    {
        var model = new PlotModel { Title = title, TitleFontSize = 14, DefaultFont = "DejaVu Sans", Background = OxyColors.White };
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.TopRight, LegendPlacement = LegendPlacement.Inside, LegendBackground = OxyColor.FromAColor(200, OxyColors.White) });
        return model;
    }
}

using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class PredictSettings : ImageSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<images>")]
    [Description("An image, a folder (searched recursively), or a CSV/TSV manifest whose first column is the image path.")]
    public string Images { get; init; } = "";

    [CommandOption("-k|--top <K>")]
    [Description("How many labels to show per image, best first.")]
    [DefaultValue(3)]
    public int Top { get; init; } = 3;

    [CommandOption("--json")]
    [Description("Write JSON to standard output (one object per image), for scripts.")]
    public bool Json { get; init; }

    [CommandOption("--csv")]
    [Description("Write CSV to standard output: path,label,probability,top-k labels and scores.")]
    public bool Csv { get; init; }

    public override ValidationResult Validate() =>
        Top < 1 ? ValidationResult.Error("--top must be at least 1")
        : Json && Csv ? ValidationResult.Error("choose one of --json and --csv")
        : base.Validate();
}

/// <summary><c>predict</c>: label + top-k scores for images, through the saved ML.NET model only.</summary>
public sealed class PredictCommand : Command<PredictSettings>
{
    public override int Execute(CommandContext context, PredictSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var (images, skipped) = ImageInputs.Expand(settings.Images, settings.DataOptions);
        if (images.Count == 0 && skipped.Count == 0)
            throw new DatasetException($"{Path.GetFullPath(settings.Images)}: no images found (supported: {string.Join(", ", ImageFileCheck.Extensions)}).");
        using var classifier = ImageClassifier.Load(settings.Model, validation: settings.Validation);
        var results = new List<(string Path, ImagePrediction? Prediction, string? Error)>();
        foreach (var s in skipped)
            results.Add((s.Path, null, s.Reason));
        foreach (var image in images)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                results.Add((image, classifier.Predict(image), null));
            }
            catch (ImageReadException e)
            {
                results.Add((image, null, e.Reason));
            }
        }
        results = results.OrderBy(r => r.Path, StringComparer.Ordinal).ToList();

        if (settings.Json)
            Console.Out.WriteLine(JsonSerializer.Serialize(results.Select(r => new
            {
                path = r.Path,
                label = r.Prediction?.Label,
                probability = r.Prediction?.Probability,
                top = r.Prediction?.Top(settings.Top).Select(s => new { label = s.Label, score = s.Score }),
                error = r.Error,
            }), new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
        else if (settings.Csv)
            WriteCsv(results, settings.Top);
        else
            WriteTable(console, results, settings.Top);

        // A single unreadable image is an error; in a batch, bad files are listed and the rest is predicted.
        return results.All(r => r.Error is not null) ? Fail(console, results) : 0;
    }

    private static int Fail(IAnsiConsole console, List<(string Path, ImagePrediction? Prediction, string? Error)> results)
    {
        throw new ImageReadException(results[0].Path, results[0].Error!);
    }

    private static void WriteTable(IAnsiConsole console, List<(string Path, ImagePrediction? Prediction, string? Error)> results, int top)
    {
        var table = new Table().AddColumn("image").AddColumn("label").AddColumn(new TableColumn("probability").RightAligned()).AddColumn($"top {top}");
        foreach (var (path, prediction, error) in results)
        {
            if (prediction is null)
                table.AddRow(SafeMarkup.Escape(path), "[red]skipped[/]", "", SafeMarkup.Escape(error ?? ""));
            else
                table.AddRow(SafeMarkup.Escape(path), $"[bold]{SafeMarkup.Escape(prediction.Label)}[/]",
                    prediction.Probability.ToString("F4", CultureInfo.InvariantCulture),
                    SafeMarkup.Escape(string.Join("  ", prediction.Top(top).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Label} {s.Score:F4}")))));
        }
        console.Write(table);
    }

    private static void WriteCsv(List<(string Path, ImagePrediction? Prediction, string? Error)> results, int top)
    {
        static string Q(string raw) { var s = MlNetTransfer.IO.PrintableText.Escape(raw); return s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s; }
        var header = new StringBuilder("path,label,probability");
        for (int i = 1; i <= top; i++) header.Append(CultureInfo.InvariantCulture, $",top{i}_label,top{i}_score");
        header.Append(",error");
        Console.Out.WriteLine(header);
        foreach (var (path, prediction, error) in results)
        {
            var line = new StringBuilder(Q(path));
            if (prediction is null)
                line.Append(",,").Append(string.Concat(Enumerable.Repeat(",,", top))).Append(',').Append(Q(error ?? ""));
            else
            {
                line.Append(',').Append(Q(prediction.Label)).Append(',').Append(prediction.Probability.ToString("R", CultureInfo.InvariantCulture));
                var best = prediction.Top(top);
                for (int i = 0; i < top; i++)
                    line.Append(',').Append(i < best.Count ? Q(best[i].Label) : "").Append(',').Append(i < best.Count ? best[i].Score.ToString("R", CultureInfo.InvariantCulture) : "");
                line.Append(',');
            }
            Console.Out.WriteLine(line);
        }
    }
}

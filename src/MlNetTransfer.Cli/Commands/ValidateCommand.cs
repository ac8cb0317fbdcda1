using System.ComponentModel;
using System.Text.Json;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class ValidateSettings : ImageSettings
{
    [CommandArgument(0, "<images>")]
    [Description("An image, a folder of images (searched recursively), or a CSV/TSV manifest.")]
    public string Images { get; init; } = "";

    [CommandOption("--json")]
    [Description("Write every file's verdict as JSON to standard output.")]
    public bool Json { get; init; }
}

/// <summary>
/// <c>validate</c>: checks images as training would (header limits first, then a full decode that notices truncation)
/// without a model, and lists every bad file with the reason.
/// </summary>
public sealed class ValidateCommand : Command<ValidateSettings>
{
    public override int Execute(CommandContext context, ValidateSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var (images, skipped) = ImageInputs.Expand(settings.Images, settings.DataOptions);
        var verdicts = skipped.Select(s => (s.Path, Ok: false, Note: s.Reason)).ToList();
        var options = settings.Validation;
        foreach (var path in images)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var decoded = ImageDecoder.Decode(path, options);
            using (decoded.Image)
                verdicts.Add((path, decoded.Image is not null, decoded.Rejection ?? decoded.Warning ?? $"{decoded.Header!.Format} {decoded.Header.Width}x{decoded.Header.Height}" +
                                                                (decoded.Header.NeedsOrientation ? $", EXIF orientation {decoded.Header.Origin}" : "")));
        }
        verdicts = verdicts.OrderBy(v => v.Path, StringComparer.Ordinal).ToList();
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(verdicts.Select(v => new { path = v.Path, ok = v.Ok, note = v.Note }), new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var bad = verdicts.Where(v => !v.Ok).ToList();
        if (settings.Verbose)
            foreach (var v in verdicts.Where(v => v.Ok))
                console.MarkupLine($"  [green]ok[/] {SafeMarkup.Escape(v.Path)}: {SafeMarkup.Escape(v.Note)}");
        ReportRenderer.Skipped(console, bad.Select(b => new SkippedFile(b.Path, b.Note)).ToList(), verbose: true);
        console.MarkupLine($"{verdicts.Count - bad.Count} of {verdicts.Count} file(s) are usable images; {bad.Count} would be skipped.");
        return 0;
    }
}

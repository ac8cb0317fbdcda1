using System.ComponentModel;
using System.Globalization;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Onnx;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class ExportSettings : GlobalSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandOption("-o|--out <FILE>")]
    [Description("ONNX file to write. Default: the model's name with .onnx.")]
    public string? Out { get; init; }
}

/// <summary><c>export</c>: the whole classifier (conv base + head -> probabilities) as one ONNX file, for use outside .NET.</summary>
public sealed class ExportCommand : Command<ExportSettings>
{
    public override int Execute(CommandContext context, ExportSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var output = settings.Out ?? Path.ChangeExtension(settings.Model, ".onnx");
        var exported = ClassifierExporter.Export(settings.Model, output);
        var shapes = FormattableString.Invariant(
            $" ({exported.Bytes / 1048576.0:F1} MiB): input {FeaturizerGraphBuilder.PixelsTensor} [batch,3,{exported.Height},{exported.Width}] RGB 0..255, output {ClassifierExporter.ProbabilitiesTensor} [batch,{exported.Classes.Count}]");
        console.MarkupLine($"Exported [bold]{SafeMarkup.Escape(exported.Path)}[/]{SafeMarkup.Escape(shapes)}");
        if (!settings.Quiet)
            console.MarkupLine($"Classes, in output order: {SafeMarkup.Escape(string.Join(", ", exported.Classes))}. The model's metadata says how to resize.");
        return 0;
    }
}

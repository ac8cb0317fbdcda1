using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

/// <summary><c>bases</c>: the conv-base presets, their preprocessing and named blocks.</summary>
public sealed class BasesCommand : Command<GlobalSettings>
{
    public override int Execute(CommandContext context, GlobalSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var table = new Table().AddColumn("name").AddColumn("preprocessing").AddColumn("blocks").AddColumn("ONNX file");
        foreach (var name in ConvBaseRegistry.Names)
        {
            var p = ConvBaseRegistry.Get(name);
            var blocks = p.Blocks.Count > 0 ? string.Join(", ", p.Blocks.Select(b => b.Name)) : p.BlocksEndAtMaxPools ? "block1..block5 (one per MaxPool)" : "-";
            var file = p.ModelFile is null ? "yours: --base-model (see onnx/README.md)" : File.Exists(p.ModelFile) ? p.ModelFile : $"missing: {p.ModelFile}";
            table.AddRow($"[bold]{SafeMarkup.Escape(p.Name)}[/]\n{SafeMarkup.Escape(p.Description)}", SafeMarkup.Escape(p.Preprocessing.Describe()), SafeMarkup.Escape(blocks), SafeMarkup.Escape(file));
        }
        console.Write(table);
        return 0;
    }
}

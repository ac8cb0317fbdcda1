using MlNetTransfer.IO;
using Spectre.Console;

namespace MlNetTransfer.Cli.Rendering;

/// <summary>
/// Text from the data (file and class names, reasons that quote them) for Spectre markup: control characters escaped
/// first (a name must not move the cursor, recolour the terminal or split a line), then the markup brackets.
/// </summary>
internal static class SafeMarkup
{
    public static string Escape(string? text) => Markup.Escape(PrintableText.Escape(text));
}

using System.Globalization;
using System.Text;

namespace MlNetTransfer.IO;

/// <summary>
/// Text from the data (file, folder and class names, zip entry names) made safe to print: control characters (an
/// escape sequence, a newline that would split a one-line message) and the invisible bidirectional overrides that can
/// make a name read as another are written as <c>\n</c>, <c>\t</c> or <c>\u001b</c>, so what is printed is the name,
/// visibly, on one line.
/// </summary>
internal static class PrintableText
{
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return text ?? "";
        int first = 0;
        while (first < text.Length && !NeedsEscape(text[first]))
            first++;
        if (first == text.Length)
            return text;
        var sb = new StringBuilder(text.Length + 8).Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!NeedsEscape(c))
            {
                sb.Append(c);
                continue;
            }
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
            });
        }
        return sb.ToString();
    }

    /// <summary>C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates.</summary>
    public static bool NeedsEscape(char c) =>
        c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= '\u202a' && c <= '\u202e') || (c >= '\u2066' && c <= '\u2069') || c is '\u200e' or '\u200f' or '\u061c' or '\u2028' or '\u2029';
}

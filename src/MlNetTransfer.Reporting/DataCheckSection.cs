using System.Globalization;
using System.Net;
using System.Text;
using MlNetTransfer.Training;

namespace MlNetTransfer.Reporting;

/// <summary>
/// The report's data-check section: leakage in red at the top of it (it inflates the figure on its split), then
/// conflicting labels, redundant copies and likely label errors, each image with a thumbnail (a duplicate beside the
/// image it copies).
/// </summary>
internal static class DataCheckSection
{
    /// <summary>Cards per kind; the metrics JSON has every finding.</summary>
    private const int Shown = 24;

    public static void Append(StringBuilder sb, DataCheckReport? checks)
    {
        if (checks is null)
            return;
        static string E(string s) => WebUtility.HtmlEncode(IO.PrintableText.Escape(s));
        static string F(double? v) => v is { } x ? x.ToString("F3", CultureInfo.InvariantCulture) : "-";
        var near = checks.Findings.Count(f => f.Kind != DataFindingKind.LabelError && !f.Exact);
        sb.Append("<h2 id=\"data-checks\">Data checks</h2><p>")
          .Append(checks.ImagesChecked).Append(" images compared: exact copies by content hash, near-duplicates at cosine &ge; ")
          .Append(checks.NearDuplicateThreshold.ToString("F2", CultureInfo.InvariantCulture)).Append(" of the L2-normalised pooled conv-base features (")
          .Append(near).Append(" found); ")
          .Append(checks.LabelCheckSkipped is { } why
              ? "labels not checked: " + E(why)
              : $"labels of {checks.LabelsChecked} training images checked against {checks.Folds}-fold out-of-fold probabilities of the L-BFGS head (suspect: the given label below its class's mean self-confidence, another class more probable)")
          .Append(".</p>");

        void Cards(DataFindingKind kind, string title, string note, bool red)
        {
            var rows = checks.Of(kind).ToList();
            if (rows.Count == 0)
                return;
            sb.Append(red ? "<div class=\"leakage\" style=\"border:2px solid #b00;background:#fff0f0;padding:.5rem 1rem;margin:1rem 0\">" : "<div>")
              .Append("<h3").Append(red ? " class=\"bad\"" : "").Append('>').Append(E(title)).Append($" ({rows.Count})</h3><p>").Append(E(note)).Append("</p><div class=\"gallery\">");
            foreach (var f in rows.Take(Shown))
            {
                sb.Append("<div class=\"card\"").Append(kind == DataFindingKind.LabelError ? "" : " style=\"width:380px\"").Append('>');
                Thumb(f.Path);
                if (f.OtherPath is not null && kind != DataFindingKind.LabelError)
                    Thumb(f.OtherPath);
                sb.Append("<div style=\"clear:both\"></div>");
                if (kind == DataFindingKind.LabelError)
                    sb.Append($"<div>labelled <b class=\"bad\">{E(f.Label)}</b> ({F(f.GivenProbability)})</div><div>looks like <b>{E(f.SuspectedLabel ?? "")}</b> ({F(f.SuspectedProbability)}){(f.Confident ? " *" : "")}</div>")
                      .Append($"<div title=\"{E(f.Path)}\">{E(Path.GetFileName(f.Path))}</div>");
                else
                    sb.Append($"<div title=\"{E(f.Path)}\">{E(Short(f.Path))} ({E(f.Label)}, {DataFinding.SplitWord(f.Split)})</div>")
                      .Append($"<div title=\"{E(f.OtherPath ?? "")}\">copies {E(Short(f.OtherPath ?? ""))} ({E(f.OtherLabel ?? "")}, {(f.OtherSplit is { } s ? DataFinding.SplitWord(s) : "")})</div>")
                      .Append($"<div>{(f.Exact ? "exact copy" : "cosine " + F(f.Similarity))}; {(f.Dropped ? "left out" : "kept")}</div>");
                sb.Append("</div>");
            }
            sb.Append("</div>");
            if (rows.Count > Shown)
                sb.Append($"<p>... and {rows.Count - Shown} more (the metrics JSON lists every one).</p>");
            sb.Append("</div>");
        }

        void Thumb(string path)
        {
            var uri = Thumbnails.DataUri(path);
            if (uri is not null)
                sb.Append("<img style=\"float:left;margin:0 4px 4px 0\" alt=\"").Append(E(Path.GetFileName(path))).Append("\" src=\"").Append(uri).Append("\">");
        }

        Cards(DataFindingKind.Leakage, "LEAKAGE: copies of an earlier split's images",
            "These images of a validation or test split are copies of images the model trained on (or chose on): the figure on their split counts them, so it is inflated. Train with --drop-duplicates to leave them out.", red: true);
        Cards(DataFindingKind.Conflict, "Conflicting labels: one image under two classes", "At least one of the two labels is wrong.", red: false);
        Cards(DataFindingKind.Redundant, "Redundant copies within a class", "They add weight to one photo, not information.", red: false);
        Cards(DataFindingKind.LabelError, "Likely label errors, most suspect first",
            "Out-of-fold probability of the given label and of the class it looks like (* also at or above that class's own threshold). Look at them; nothing was changed.", red: false);
    }

    /// <summary>The class folder and file name: enough to find it, short enough for a card.</summary>
    private static string Short(string path) =>
        Path.Combine(Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(path)) ?? ""), Path.GetFileName(Path.GetDirectoryName(path)) ?? "", Path.GetFileName(path));
}

using System.Text;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// TorchSharp names for ONNX tensors: a module's parameter and buffer names may not contain '.' (it separates
/// submodules), so anything but letters, digits and '_' becomes '_', made unique with a suffix.
/// </summary>
internal sealed class TorchNaming
{
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);

    public string Unique(string onnxName, string prefix = "")
    {
        var sb = new StringBuilder(prefix.Length + onnxName.Length + 1).Append(prefix);
        foreach (var c in onnxName)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
            sb.Insert(0, '_');
        var baseName = sb.ToString();
        var name = baseName;
        for (int k = 2; !_taken.Add(name); k++)
            name = $"{baseName}_{k}";
        return name;
    }
}

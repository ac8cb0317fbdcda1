using System.Globalization;
using MlNetTransfer.Backbones;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// Where a composed graph is cut for fine-tuning: the blocks that train, and the tensor below them whose activations are
/// computed once (by the frozen prefix) and cached.
/// </summary>
/// <param name="Blocks">All named blocks, bottom to top.</param>
/// <param name="Unfrozen">The blocks that train (the top ones).</param>
/// <param name="Tensor">The freeze boundary: output of the last frozen block, or the conv base's input if all train.</param>
internal sealed record FreezeBoundary(IReadOnlyList<NamedBlock> Blocks, IReadOnlyList<NamedBlock> Unfrozen, string Tensor)
{
    /// <summary>
    /// The named blocks of a preset in a graph: the preset's list, or for VGG-style bases the output of each MaxPool
    /// (<c>block1..blockN</c>, in graph order). Every listed tensor must exist.
    /// </summary>
    public static IReadOnlyList<NamedBlock> BlocksOf(ConvBasePreset preset, GraphProto graph)
    {
        var produced = graph.Node.SelectMany(n => n.Output).ToHashSet();
        if (preset.Blocks.Count > 0)
        {
            var missing = preset.Blocks.FirstOrDefault(b => !produced.Contains(b.Output));
            if (missing is not null)
                throw new ConvBaseException($"Conv base '{preset.Name}': block '{missing.Name}' ends at tensor '{missing.Output}', which its graph does not have.");
            return preset.Blocks;
        }
        if (preset.BlocksEndAtMaxPools)
            return graph.Node.Where(n => n.OpType == "MaxPool" && !n.Name.StartsWith("mlnt_", StringComparison.Ordinal))
                .Select((n, i) => new NamedBlock($"block{i + 1}", n.Output[0])).ToList();
        return [];
    }

    /// <summary>
    /// <paramref name="unfreeze"/> is a block name (that block and all above it train) or a count of blocks from the top.
    /// </summary>
    public static FreezeBoundary Resolve(ConvBasePreset preset, GraphProto composed, string unfreeze, string baseInputTensor)
    {
        var blocks = BlocksOf(preset, composed);
        if (blocks.Count == 0)
            throw new ConvBaseException($"Conv base '{preset.Name}' has no named blocks, so nothing can be unfrozen; list them in its spec's \"blocks\".");
        int first;
        if (int.TryParse(unfreeze, NumberStyles.Integer, CultureInfo.InvariantCulture, out int count))
        {
            if (count < 1 || count > blocks.Count)
                throw new ConvBaseException($"FineTuning.Unfreeze = {count}: '{preset.Name}' has {blocks.Count} blocks ({string.Join(", ", blocks.Select(b => b.Name))}).");
            first = blocks.Count - count;
        }
        else
        {
            first = blocks.Select((b, i) => (b, i)).FirstOrDefault(p => string.Equals(p.b.Name, unfreeze, StringComparison.OrdinalIgnoreCase)).i;
            if (!blocks.Any(b => string.Equals(b.Name, unfreeze, StringComparison.OrdinalIgnoreCase)))
                throw new ConvBaseException($"FineTuning.Unfreeze = {unfreeze}: '{preset.Name}' has no such block; its blocks are {string.Join(", ", blocks.Select(b => b.Name))} (or give a count from the top).");
        }
        var boundary = first == 0 ? baseInputTensor : blocks[first - 1].Output;
        return new FreezeBoundary(blocks, blocks.Skip(first).ToList(), boundary);
    }
}

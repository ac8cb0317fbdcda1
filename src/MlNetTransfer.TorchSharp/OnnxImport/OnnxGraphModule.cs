using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// Runs the part of an ONNX graph between an input tensor and an output tensor as a TorchSharp module, so that a
/// conv base exported to ONNX can be fine-tuned (and its prefix run) without re-implementing it. CPU, float32.
/// </summary>
/// <remarks>
/// The nodes used are those needed to compute the output that depend on the input; every other tensor they read must
/// be an initializer or a Constant node's output, so a boundary inside a residual block is refused. Initializers named
/// as trainable become parameters, all others buffers; their TorchSharp names are the ONNX names with characters other
/// than letters, digits and '_' replaced (see <see cref="TorchNames"/>). Like any module it starts in training mode,
/// which only matters when BatchNormalization is allowed to use batch statistics.
/// </remarks>
public sealed class OnnxGraphModule : nn.Module<Tensor, Tensor>
{
    private readonly Step[] _steps;
    private readonly ConstantSlot[] _constants;
    private readonly int _slotCount;
    private readonly int _inputSlot;
    private readonly int _outputSlot;
    private readonly Dictionary<string, ConstantSlot> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _torchNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _onnxNames = new(StringComparer.Ordinal);
    private readonly bool _trainBatchNorm;

    /// <summary>Imports the nodes between <paramref name="input"/> and <paramref name="output"/>.</summary>
    /// <param name="model">The ONNX model (not modified).</param>
    /// <param name="input">Boundary tensor: a graph input or any node output.</param>
    /// <param name="output">Tensor to compute.</param>
    /// <param name="trainable">Float initializers (of these nodes) to make parameters that require gradients; the others are buffers.</param>
    /// <param name="trainBatchNorm">In training mode, BatchNormalization uses batch statistics and updates the running ones.</param>
    /// <exception cref="OnnxImportException">The tensors are missing, the output does not depend on the input, or a tensor crosses the cut.</exception>
    /// <exception cref="NotSupportedException">A node's op (or attribute value) is not supported.</exception>
    public OnnxGraphModule(ModelProto model, string input, string output, IReadOnlySet<string>? trainable = null, bool trainBatchNorm = false)
        : base(nameof(OnnxGraphModule))
    {
        ArgumentNullException.ThrowIfNull(model);
        Input = input;
        Output = output;
        _trainBatchNorm = trainBatchNorm;
        var cut = GraphCut.Select(model, input, output);
        Nodes = cut.Nodes;
        InitializerNames = cut.InitializerNames;

        trainable ??= new HashSet<string>();
        var floatInitializers = cut.InitializerNames.Where(n => OnnxTensorValues.IsFloat(cut.Constants[n])).ToHashSet();
        var unknown = trainable.Where(n => !floatInitializers.Contains(n)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"Not float initializers read between '{input}' and '{output}', so they cannot be trainable: {string.Join(", ", unknown.Take(5))}{(unknown.Count > 5 ? ", ..." : "")}.", nameof(trainable));

        var slots = new Dictionary<string, int>(StringComparer.Ordinal) { [input] = 0 };
        _inputSlot = 0;

        // Constants get slots and names first. All are registered (below) so that they follow the module (to(),
        // state_dict): float initializers as parameters or persistent buffers under sanitized names; Constant-node
        // values and integer tensors (indices) as non-persistent buffers, not initializers to save back.
        var naming = new TorchNaming();
        var initializerSet = cut.InitializerNames.ToHashSet();
        var constants = new List<(string Name, ConstantSlot Slot, TensorProto Value, bool IsInitializer)>();
        foreach (var (name, proto) in cut.Constants)
        {
            bool isInitializer = initializerSet.Contains(name) && OnnxTensorValues.IsFloat(proto);
            var constant = new ConstantSlot(slots.Count, naming.Unique(name, isInitializer ? "" : "const_"), trainable.Contains(name));
            slots[name] = constant.Slot;
            constants.Add((name, constant, proto, isInitializer));
        }
        _constants = constants.Select(c => c.Slot).ToArray();

        // Then the nodes, each reading slots filled before it (the graph is topologically sorted). Compiled before any
        // tensor is made, so that an unsupported op fails fast.
        var context = new OpContext(DefaultOpset(model), cut.Constants, () => _trainBatchNorm && training);
        var steps = new List<(NodeProto Node, NodeKernel Kernel, int[] Inputs, int Output)>();
        var secondaryOutputs = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in cut.Nodes)
        {
            var kernel = OnnxOps.Compile(node, context);
            var inputSlots = node.Input.Select(n =>
            {
                if (n.Length == 0)
                    return -1;
                if (secondaryOutputs.TryGetValue(n, out var producer))
                    throw new NotSupportedException($"Node {node.Describe()} reads '{n}', a secondary output of node {producer.Describe()}; only first outputs are computed.");
                return slots.TryGetValue(n, out var s) ? s : throw new OnnxImportException($"Node {node.Describe()} reads '{n}', which nothing before it computes.");
            }).ToArray();
            foreach (var extra in node.Output.Skip(1).Where(o => o.Length > 0))
                secondaryOutputs[extra] = node;
            if (!slots.TryAdd(node.Output[0], slots.Count))
                throw new OnnxImportException($"Tensor '{node.Output[0]}' is assigned twice (node {node.Describe()}); ONNX graphs assign each tensor once.");
            steps.Add((node, kernel, inputSlots, slots[node.Output[0]]));
        }
        if (secondaryOutputs.TryGetValue(output, out var outputProducer))
            throw new NotSupportedException($"'{output}' is a secondary output of node {outputProducer.Describe()}; only first outputs are computed.");
        _outputSlot = slots[output];
        _slotCount = slots.Count;

        foreach (var (name, constant, proto, isInitializer) in constants)
        {
            var value = OnnxTensorValues.ToTorch(proto);
            if (constant.IsParameter)
                register_parameter(constant.TorchName, new Parameter(value, requires_grad: true));
            else
                register_buffer(constant.TorchName, value, persistent: isInitializer);
            if (isInitializer)
            {
                _initializers[name] = constant;
                _torchNames[name] = constant.TorchName;
                _onnxNames[constant.TorchName] = name;
            }
        }

        // Free each intermediate after its last reader, so a forward pass holds few activations at once
        // (autograd keeps its own references to what backward needs).
        var lastUse = new Dictionary<int, int>();
        for (int i = 0; i < steps.Count; i++)
            foreach (var s in steps[i].Inputs.Where(s => s >= 0))
                lastUse[s] = i;
        var constantSlots = _constants.Select(c => c.Slot).ToHashSet();
        bool Computed(int slot) => slot != _inputSlot && slot != _outputSlot && !constantSlots.Contains(slot);
        _steps = steps.Select((step, i) => new Step(step.Node, step.Kernel, step.Inputs, step.Output,
            steps[i].Inputs.Where(s => s >= 0 && Computed(s) && lastUse[s] == i).Distinct()
                .Concat(Computed(step.Output) && !lastUse.ContainsKey(step.Output) ? [step.Output] : [])
                .ToArray())).ToArray();
    }

    /// <summary>The boundary tensor that <see cref="forward"/> takes.</summary>
    public string Input { get; }

    /// <summary>The tensor that <see cref="forward"/> returns.</summary>
    public string Output { get; }

    /// <summary>The nodes it runs, in graph order (Constant nodes are read once, when the module is built).</summary>
    public IReadOnlyList<NodeProto> Nodes { get; }

    /// <summary>The initializers those nodes read, float or not.</summary>
    public IReadOnlyList<string> InitializerNames { get; }

    /// <summary>ONNX name of each float initializer -> the name of its parameter or buffer in this module.</summary>
    public IReadOnlyDictionary<string, string> TorchNames => _torchNames;

    /// <summary>Parameter or buffer name in this module -> ONNX initializer name.</summary>
    public IReadOnlyDictionary<string, string> OnnxNames => _onnxNames;

    /// <summary>
    /// ONNX name -> current value of every float initializer the nodes read, parameters and buffers (e.g. BatchNormalization
    /// running statistics): detached float32 CPU copies in the ONNX shape, which the caller disposes.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> CurrentInitializers()
    {
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, constant) in _initializers)
        {
            using var detached = Current(constant).detach();
            values[name] = detached.to(ScalarType.Float32, CPU, copy: true);
        }
        return values;
    }

    /// <summary>
    /// The initializers worth fine-tuning among the nodes between <paramref name="input"/> and <paramref name="output"/>:
    /// float weights and biases of Conv, Gemm and MatMul (and the constant of an Add right after one of those, a bias
    /// as Keras-style exports write it), BatchNormalization scale and bias. Not running statistics, shapes or indices.
    /// </summary>
    public static IReadOnlySet<string> TrainableInitializers(ModelProto model, string input, string output)
    {
        ArgumentNullException.ThrowIfNull(model);
        var cut = GraphCut.Select(model, input, output);
        var initializers = cut.InitializerNames.Where(n => OnnxTensorValues.IsFloat(cut.Constants[n])).ToHashSet();
        var linearOutputs = cut.Nodes.Where(n => n.OpType is "Conv" or "Gemm" or "MatMul").Select(n => n.Output[0]).ToHashSet();
        var result = new HashSet<string>(StringComparer.Ordinal);
        void Take(NodeProto node, params int[] indices)
        {
            foreach (var i in indices.Where(i => i < node.Input.Count && initializers.Contains(node.Input[i])))
                result.Add(node.Input[i]);
        }
        foreach (var node in cut.Nodes)
        {
            switch (node.OpType)
            {
                case "Conv":
                    Take(node, 1, 2);
                    break;
                case "Gemm":
                    Take(node, 0, 1, 2);
                    break;
                case "MatMul":
                    Take(node, 0, 1);
                    break;
                case "BatchNormalization":
                    Take(node, 1, 2);
                    break;
                case "Add" when node.Input.Count == 2 && node.Input.Any(linearOutputs.Contains):
                    Take(node, 0, 1);
                    break;
            }
        }
        return result;
    }

    /// <summary>Computes <see cref="Output"/> from a float32 CPU tensor holding <see cref="Input"/>. The caller keeps ownership of <paramref name="x"/>.</summary>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dtype != ScalarType.Float32)
            throw new ArgumentException($"'{Input}' must be float32, not {x.dtype}.", nameof(x));
        if (_steps.Length == 0)
            return x.alias();

        var values = new Tensor?[_slotCount];
        foreach (var constant in _constants)
            values[constant.Slot] = Current(constant);
        values[_inputSlot] = x;
        int current = 0;
        try
        {
            for (; current < _steps.Length; current++)
            {
                var step = _steps[current];
                var args = new Tensor?[step.Inputs.Length];
                for (int j = 0; j < args.Length; j++)
                    args[j] = step.Inputs[j] < 0 ? null : values[step.Inputs[j]];
                values[step.Output] = step.Kernel(args);
                foreach (var slot in step.Release)
                {
                    values[slot]!.Dispose();
                    values[slot] = null;
                }
            }
            return values[_outputSlot]!;
        }
        catch (Exception e) when (e is not (OnnxImportException or NotSupportedException))
        {
            // libtorch's messages (shape mismatches) do not say which node; this does.
            throw new OnnxImportException($"Node {_steps[current].Node.Describe()} failed on '{Input}' of shape [{string.Join(",", x.shape)}]: {e.Message}", e);
        }
        finally
        {
            if (current < _steps.Length)
                foreach (var step in _steps)
                    values[step.Output]?.Dispose();
        }
    }

    private static int DefaultOpset(ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => (int)o.Version).DefaultIfEmpty(17).Max();

    // Looked up on each use: to() and friends may replace a module's tensors.
    private Tensor Current(ConstantSlot constant) =>
        (constant.IsParameter ? get_parameter(constant.TorchName) : get_buffer(constant.TorchName))
        ?? throw new InvalidOperationException($"'{constant.TorchName}' is no longer registered in the module.");

    private sealed record ConstantSlot(int Slot, string TorchName, bool IsParameter);

    private sealed record Step(NodeProto Node, NodeKernel Kernel, int[] Inputs, int Output, int[] Release);
}

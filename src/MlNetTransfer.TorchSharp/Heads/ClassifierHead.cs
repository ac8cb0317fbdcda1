using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.Heads;

/// <summary>
/// A softmax layer or the MLP head in TorchSharp. Its last layer is a plain softmax layer, which is exported as ML.NET's
/// maximum-entropy model; the MLP's hidden layer is exported into the ONNX graph.
/// </summary>
internal sealed class ClassifierHead : nn.Module<Tensor, Tensor>
{
    /// <summary>What the head is.</summary>
    public enum Kind
    {
        /// <summary>One softmax layer.</summary>
        Softmax,

        /// <summary>Dense(256, relu) -> Dropout(0.5) -> Dense(classes).</summary>
        Mlp,
    }

    private readonly Linear? hidden;
    private readonly Dropout? dropout;
    private readonly Linear output;

    public ClassifierHead(Kind kind, int inputs, int classes, int hiddenUnits = 256, double dropoutRate = 0.5) : base("head")
    {
        HeadKind = kind;
        if (kind == Kind.Mlp)
        {
            hidden = nn.Linear(inputs, hiddenUnits);
            dropout = nn.Dropout(dropoutRate);
            output = nn.Linear(hiddenUnits, classes);
        }
        else
        {
            output = nn.Linear(inputs, classes);
        }
        RegisterComponents();
    }

    public Kind HeadKind { get; }

    /// <summary>The hidden Dense layer (MLP only).</summary>
    public Linear? Hidden => hidden;

    /// <summary>The softmax layer.</summary>
    public Linear Output => output;

    /// <summary>Logits.</summary>
    public override Tensor forward(Tensor features) => output.forward(HiddenActivations(features));

    /// <summary>What the softmax layer sees: the features, or the MLP's hidden activations (after ReLU and dropout).</summary>
    public Tensor HiddenActivations(Tensor features)
    {
        if (hidden is null)
            return features;
        using var h = hidden.forward(features);
        using var r = nn.functional.relu(h);
        return dropout!.forward(r);
    }

    /// <summary>Sets the softmax layer from weights [classes][inputs] and biases (warm start from a saved model).</summary>
    public void SetOutput(float[][] weights, float[] biases)
    {
        using var _ = no_grad();
        output.weight!.copy_(tensor(weights.SelectMany(w => w).ToArray(), [weights.Length, weights[0].Length]));
        output.bias!.copy_(tensor(biases));
    }

    /// <summary>Sets the hidden layer from [units][inputs] weights and biases.</summary>
    public void SetHidden(float[] weights, float[] biases)
    {
        using var _ = no_grad();
        hidden!.weight!.copy_(tensor(weights, hidden.weight.shape));
        hidden.bias!.copy_(tensor(biases));
    }
}

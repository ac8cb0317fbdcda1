namespace MlNetTransfer.Training; internal static class Placeholder { }

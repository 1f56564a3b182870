def main() -> None:
    print("batchcalls")

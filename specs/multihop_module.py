"""DSPy's MultiHop as a Python program: `program: multihop_module:MultiHop` in multihop_module.yaml."""

import promptc


class MultiHop(promptc.Module):
    signature = "question -> answer"

    def __init__(self):
        self.generate_query = promptc.ChainOfThought("context: list[str], question -> query")
        self.retrieve = promptc.Retrieve("query -> passages: list[str]", retriever="world", k=2)
        self.generate_answer = promptc.ChainOfThought("context: list[str], question -> answer")

    async def forward(self, question):
        context = []
        for _ in range(2):
            query = (await self.generate_query(context=context, question=question)).query
            context = list(dict.fromkeys(context + (await self.retrieve(query=query)).passages))
        return await self.generate_answer(context=context, question=question)
